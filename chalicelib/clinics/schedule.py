"""Working time as concrete UTC intervals, computed from local wall time and an IANA zone.

Templates are kept as wall time plus zone, so a daylight-saving change moves
nothing in the branch; comparing a doctor's commitments across clinics (and
zones) is done on the concrete UTC intervals they produce.

Wall times convert with ``core.tz.local_to_utc``: a time in a spring-forward gap moves
forward to the end of the gap, a time in the autumn fold is its first occurrence. So a
window's interval is real elapsed time, never ends before it starts, and a window wholly
inside a gap gives no interval at all that day (never an empty or reversed one).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Iterable, Iterator, Optional

from chalicelib.core.tz import local_to_utc

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 366

Interval = tuple[datetime, datetime]


def local_interval(day: date, start: time, end: time, zone: str) -> Optional[Interval]:
    """The UTC interval of one day's wall-time window, or None when no real time is in it
    (the window lies wholly inside a spring-forward gap). A window whose end is at or before its start
    runs past midnight into the next day (22:00-02:00; 20:00-00:00 ends at midnight)."""
    end_day = day + timedelta(days=1) if end <= start else day
    s, e = local_to_utc(day, start, zone), local_to_utc(end_day, end, zone)
    return (s, e) if s < e else None


def template_occurrences(weekday: str, start: time, end: time, zone: str, window_from: date,
                         window_until: date) -> Iterator[Interval]:
    """UTC intervals of a weekly template between two local dates (inclusive)."""
    wd = WEEKDAYS.index(weekday)
    day = window_from + timedelta(days=(wd - window_from.weekday()) % 7)
    while day <= window_until:
        iv = local_interval(day, start, end, zone)
        if iv:
            yield iv
        day += timedelta(days=7)


def template_window(valid_from: Optional[str], valid_until: Optional[str], today: date) -> tuple[date, date]:
    start = max(today, date.fromisoformat(valid_from)) if valid_from else today
    end = date.fromisoformat(valid_until) if valid_until else today + timedelta(days=HORIZON_DAYS)
    return start, min(end, today + timedelta(days=HORIZON_DAYS))


def intervals_of(item: dict, today: date) -> list[Interval]:
    """Concrete UTC intervals of a stored template, extra-hours exception or duty shift."""
    if item["type"] == "schedule_template":
        lo, hi = template_window(item.get("valid_from"), item.get("valid_until"), today)
        return list(template_occurrences(item["weekday"], time.fromisoformat(item["start"]),
                                         time.fromisoformat(item["end"]), item["time_zone"], lo, hi))
    if item["type"] == "schedule_exception" and item["kind"] == "extra":
        out = []
        day = date.fromisoformat(item["date_from"])
        last = date.fromisoformat(item["date_until"])
        while day <= last:
            iv = local_interval(day, time.fromisoformat(item["start"]), time.fromisoformat(item["end"]),
                                item["time_zone"])
            if iv:
                out.append(iv)
            day += timedelta(days=1)
        return out
    if item["type"] == "duty_shift":
        return [(datetime.fromisoformat(item["starts_at_utc"].replace("Z", "+00:00")),
                 datetime.fromisoformat(item["ends_at_utc"].replace("Z", "+00:00")))]
    return []


def first_overlap(a: Iterable[Interval], b: Iterable[Interval]) -> Optional[Interval]:
    """The first moment two sets of intervals overlap (touching ends do not count)."""
    xs, ys = sorted(a), sorted(b)
    i = j = 0
    while i < len(xs) and j < len(ys):
        (s1, e1), (s2, e2) = xs[i], ys[j]
        if s1 < e2 and s2 < e1:
            return max(s1, s2), min(e1, e2)
        if e1 <= e2:
            i += 1
        else:
            j += 1
    return None
