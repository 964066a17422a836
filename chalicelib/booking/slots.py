"""Free slots: a doctor's working time minus leave, busy time, busy resources and notice.

Pure functions over items already read; no I/O here.

Local days and wall times are the clinic's (the template's zone); every interval is a pair of
real UTC instants, converted by ``core.tz.local_to_utc`` (gap: forward to the end of the gap;
fold: first occurrence). Slots step through real time, so each is exactly the service's length
even on a night the clocks change.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Iterable, Optional

from chalicelib.clinics.schedule import local_interval, template_occurrences
from chalicelib.core.tz import local_to_utc, zone

BLOCK_MINUTES = 5

Interval = tuple[datetime, datetime]


def _local_days(d_from: date, d_to: date) -> Iterable[date]:
    day = d_from
    while day <= d_to:
        yield day
        day += timedelta(days=1)


def working_intervals(schedule_items: list[dict[str, Any]], clinic_id: str, modality: str,
                      branch_id: Optional[str], d_from: date, d_to: date) -> list[tuple[Interval, str, str]]:
    """((start, end) UTC, branch_id, zone) the doctor works for this clinic and modality, with this
    clinic's leave and the doctor's own leave (entered by the doctor: away everywhere) taken out. Another
    clinic's leave is that clinic's business: it takes nothing from this one."""
    work: list[tuple[Interval, str, str]] = []
    leaves = [i for i in schedule_items if i.get("type") == "schedule_exception" and i.get("kind") == "leave"
              and (i.get("clinic_id") == clinic_id or i.get("source") == "doctor")]
    for item in schedule_items:
        if item.get("clinic_id") != clinic_id or item.get("modality") != modality:
            continue
        if branch_id and item.get("branch_id") != branch_id:
            continue
        if item.get("type") == "schedule_template":
            lo = max(d_from, date.fromisoformat(item["valid_from"])) if item.get("valid_from") else d_from
            hi = min(d_to, date.fromisoformat(item["valid_until"])) if item.get("valid_until") else d_to
            for iv in template_occurrences(item["weekday"], time.fromisoformat(item["start"]),
                                           time.fromisoformat(item["end"]), item["time_zone"], lo, hi):
                work.append((iv, item["branch_id"], item["time_zone"]))
        elif item.get("type") == "schedule_exception" and item.get("kind") == "extra":
            lo = max(d_from, date.fromisoformat(item["date_from"]))
            hi = min(d_to, date.fromisoformat(item["date_until"]))
            for day in _local_days(lo, hi):
                extra = local_interval(day, time.fromisoformat(item["start"]), time.fromisoformat(item["end"]),
                                       item["time_zone"])
                if extra:
                    work.append((extra, item["branch_id"], item["time_zone"]))
    out = []
    for iv, bid, tz in work:
        for piece in subtract([iv], [lv for leave in leaves for lv in leave_intervals(leave, iv, tz)]):
            out.append((piece, bid, tz))
    out.sort()
    return out


def leave_intervals(leave: dict[str, Any], around: Interval, tz: str) -> list[Interval]:
    """A leave as UTC intervals near ``around``, read in the working interval's own zone."""
    first = around[0].astimezone(zone(tz)).date() - timedelta(days=1)
    last = around[1].astimezone(zone(tz)).date()
    lo = max(first, date.fromisoformat(leave["date_from"]))
    hi = min(last, date.fromisoformat(leave["date_until"]))
    out = []
    for day in _local_days(lo, hi):
        if leave.get("start") and leave.get("end"):
            iv = local_interval(day, time.fromisoformat(leave["start"]), time.fromisoformat(leave["end"]), tz)
            if iv:
                out.append(iv)
        else:  # whole local days, midnight to midnight (a midnight in a gap moves forward too)
            out.append((local_to_utc(day, time(0), tz), local_to_utc(day + timedelta(days=1), time(0), tz)))
    return out


def subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    result = list(intervals)
    for hs, he in holes:
        nxt = []
        for s, e in result:
            if he <= s or hs >= e:
                nxt.append((s, e))
                continue
            if s < hs:
                nxt.append((s, hs))
            if he < e:
                nxt.append((he, e))
        result = nxt
    return result


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def candidate_slots(work: list[tuple[Interval, str, str]], duration: timedelta) -> list[tuple[Interval, str, str]]:
    """Back-to-back slots from the start of each working interval."""
    out = []
    for (start, end), bid, tz in work:
        t = start
        while t + duration <= end:
            out.append(((t, t + duration), bid, tz))
            t += duration
    return out


def free_unit(slot: Interval, units: list[tuple[str, int]], busy: dict[tuple[str, int], list[Interval]]) \
        -> Optional[tuple[str, int]]:
    """The first (resource, unit) with nothing booked during ``slot``."""
    for unit in units:
        if not any(overlaps(slot, b) for b in busy.get(unit, [])):
            return unit
    return None


def blocks(interval: Interval) -> list[datetime]:
    """The 5-minute blocks an interval covers (slots always start and end on the grid)."""
    out, t = [], interval[0]
    while t < interval[1]:
        out.append(t)
        t += timedelta(minutes=BLOCK_MINUTES)
    return out
