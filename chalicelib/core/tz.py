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


def local_to_utc(day: date, wall: time, zone_name: str) -> datetime:
    """Wall-clock time in a zone to UTC. A wall time skipped by a DST jump moves forward."""
    tz = zone(zone_name)
    local = datetime.combine(day, wall).replace(tzinfo=tz)
    utc = local.astimezone(timezone.utc)
    # Round-trip to detect a non-existent wall time (spring forward gap).
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        utc = local.replace(fold=1).astimezone(timezone.utc)
    return utc


def present(moment: datetime, zone_name: str) -> dict[str, str]:
    """A moment as people see it: local time with offset, the zone, and UTC."""
    tz = zone(zone_name)
    local = moment.astimezone(tz)
    return {
        "local": local.isoformat(timespec="minutes"),
        "time_zone": zone_name,
        "utc": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
