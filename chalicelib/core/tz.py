"""Time zones. Storage is UTC; what people see carries the IANA zone and offset."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class TimeZoneError(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """A validated IANA zone. Rejects abbreviations and fixed offsets like 'MSK' or '+03:00'."""
    if not isinstance(name, str) or "/" not in name or name not in _known():
        raise TimeZoneError(f"unknown IANA time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - guarded above
        raise TimeZoneError(f"unknown IANA time zone {name!r}") from exc


_KNOWN: set[str] | None = None


def _known() -> set[str]:
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = available_timezones()
    return _KNOWN


def local_day(moment: datetime | str, zone_name: str | None) -> date:
    """The calendar day an instant falls on in a zone (an ISO string ending in Z is read as UTC).

    Every feature cuts days with this one function: counters, limits, filters, observation periods and
    reminder days all agree on where a clinic's day begins. Without a zone the day is the UTC one.
    """
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(zone(zone_name) if zone_name else timezone.utc).date()


def local_to_utc(day: date, wall: time, zone_name: str) -> datetime:
    """Wall-clock time in a zone to the UTC instant it names, defined for every wall time.

    - Spring-forward gap (the wall time does not exist): it moves forward to the first instant
      after the jump, i.e. the moment the clock resumes. Europe/Berlin 2026-03-29 02:00..02:59
      -> 03:00 CEST (01:00Z). A working window that starts in the gap starts at 03:00, one that
      ends in the gap ends at 03:00, one wholly inside the gap is empty that day. (Python's own
      ``fold`` in a gap would move 02:30 to 01:30 CET, backwards, or to 03:30 CEST, past the end
      of the window; neither is used.)
    - Autumn fold (the wall time happens twice): it is its first occurrence, ``fold=0``, the
      offset before the change. Europe/Berlin 2026-10-25 02:30 -> 02:30 CEST (00:30Z). This holds
      for starts and ends alike, so a window's length is real elapsed time: 01:00-04:00 that
      night is 4 real hours, and 01:00-04:00 on 29 March is 2.
    - The mapping never runs backwards: a later wall time never gives an earlier instant, so a
      window with start < end never ends before it starts, and windows apart in wall time stay
      apart in UTC.
    """
    tz = zone(zone_name)
    naive = datetime.combine(day, wall)
    utc = naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc  # exists; in a fold fold=0 is the first occurrence
    return _gap_end(naive, tz)


def _gap_end(naive: datetime, tz: ZoneInfo) -> datetime:
    """The instant a clock jump over ``naive`` ends (the first instant with the offset after it).

    With fold=1 the wall time reads with the offset after the jump, an instant before it; with
    fold=0 with the offset before, an instant after it. Transitions fall on whole seconds, so a
    bisection over the seconds between finds the jump."""
    lo = int(naive.replace(tzinfo=tz, fold=1).timestamp())  # before the jump
    hi = int(naive.replace(tzinfo=tz, fold=0).timestamp())  # at or after the jump
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, timezone.utc)


def present(moment: datetime, zone_name: str) -> dict[str, str]:
    """A moment as people see it: local time with offset, the zone, and UTC."""
    tz = zone(zone_name)
    local = moment.astimezone(tz)
    return {
        "local": local.isoformat(timespec="minutes"),
        "time_zone": zone_name,
        "utc": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
