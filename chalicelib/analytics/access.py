"""Who may read which figures, and the few facts analytics takes from other features.

- A clinic's figures, segments and exports: its administrators (with an authenticator app) and platform
  administrators; a recall is sent by the clinic's administrators only. Another clinic is 404.
- A doctor reads their own figures in a clinic they work in, never a colleague's and never a comment
  (the feedback comments stay behind ``GET /clinics/{id}/feedback``, administrators only).
"""
from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any, Optional

from chalicelib.core.errors import forbidden, not_found

DEFAULT_ZONE = "Europe/Moscow"


def require_reader(caller: Any, clinic_id: str, admin_only: bool = False) -> dict[str, Any]:
    from chalicelib.clinics import access as clinic_access

    if admin_only:
        return clinic_access.require_admin(caller, clinic_id)
    return clinic_access.readable_clinic(caller, clinic_id)


def require_doctor(caller: Any, clinic_id: str) -> None:
    from chalicelib.clinics import access as clinic_access

    clinic_access.require_staff(caller, "doctor")
    if not clinic_access.is_doctor_of(clinic_id, caller.user_id):
        raise not_found()


def is_doctor_of(clinic_id: str, doctor_id: str) -> bool:
    from chalicelib.clinics import access as clinic_access

    return clinic_access.is_doctor_of(clinic_id, doctor_id)


def clinic(clinic_id: str) -> dict[str, Any]:
    from chalicelib.clinics import store as clinic_store

    found = clinic_store.get_clinic(clinic_id)
    if found is None:
        raise not_found()
    return found


def zone_of(c: dict[str, Any]) -> str:
    """The clinic's zone: the one it names, else its first branch's (kept on the profile by analytics' reads)."""
    return c.get("time_zone") or clinic_zone(c["clinic_id"])


_ZONES: dict[str, str] = {}


def clinic_zone(clinic_id: str) -> str:
    """The zone of the clinic's first branch (a clinic's branches share a zone in practice; a network across
    zones keeps each visit on its own branch's local day, see docs/architecture.md). Cached per process."""
    if clinic_id not in _ZONES:
        from chalicelib.clinics import store as clinic_store

        _ZONES[clinic_id] = clinic_store.first_branch_zone(clinic_id) or DEFAULT_ZONE
    return _ZONES[clinic_id]


def clinic_calendar(clinic_id: str, from_iso: str, to_iso: str) -> list[dict[str, Any]]:
    """Every booking of the clinic starting in [from, to] (its calendar, paged to the end): the rebuild."""
    from chalicelib.core import db

    items = db.query_all("GSI4PK = :pk AND GSI4SK BETWEEN :a AND :b",
                         db.values(pk=db.key("CAL", clinic_id), a=from_iso, b=to_iso + "~"), index="GSI4")
    return [i for i in items if i.get("type") == "booking"]


def signed_conclusions(bookings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The first signed version of each visit's conclusion (status and signing time; never its content)."""
    from chalicelib.records import store as records_store

    out = {}
    for b in bookings:
        signed = [c for c in records_store.conclusions_of_visit(b["patient_id"], b["booking_id"])
                  if c.get("status") == "signed"]
        if signed:
            first = min(signed, key=lambda c: int(c["version"]))
            out[b["booking_id"]] = {"status": "signed", "signed_at": first["signed_at"]}
    return out


def feedback_answers(clinic_id: str, booking_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The feedback answers of these visits (score and doctor; the comment is not read)."""
    from chalicelib.core import db
    from chalicelib.notify import store as notify_store

    keys = [(notify_store.feedback_pk(clinic_id), db.key("VISIT", bid)) for bid in booking_ids]
    return {i["booking_id"]: {"score": i["score"], "doctor_id": i["doctor_id"]} for i in db.batch_get(keys)}


# ------------------------------------------------------------------ scheduled minutes

def _overlap(a: tuple[Any, Any], b: tuple[Any, Any]) -> int:
    s, e = max(a[0], b[0]), min(a[1], b[1])
    return max(0, int((e - s).total_seconds() // 60))


def scheduled_minutes(clinic_id: str, first: date, last: date) -> dict[str, dict[str, int]]:
    """Per local day, the minutes each doctor of the clinic is scheduled to work there (weekly templates and
    extra hours of this clinic, less leave), per branch, and per room or machine (each unit is available
    while a doctor works in its branch). Two queries per doctor and one for the clinic's children."""
    from chalicelib.clinics import schedule
    from chalicelib.clinics import store as clinic_store
    from chalicelib.core import clock
    from chalicelib.core.tz import local_to_utc

    children = clinic_store.all_children(clinic_id, "")
    doctors = [c for c in children if c.get("type") == "doctor_membership" or c["SK"].startswith("DOCTOR#")]
    branches = {c["SK"][7:]: c for c in children if c["SK"].startswith("BRANCH#")}
    lo = local_to_utc(first, time(0), DEFAULT_ZONE) - timedelta(hours=14)
    hi = local_to_utc(last + timedelta(days=1), time(0), DEFAULT_ZONE) + timedelta(hours=14)
    out: dict[str, dict[str, int]] = {}
    busy: dict[tuple[str, str], list[tuple[Any, Any]]] = {}  # (day, branch) -> doctors' intervals
    for member in doctors:
        did = member.get("doctor_id") or member["SK"][7:]
        if member.get("status") == "removing":
            continue
        items = clinic_store.schedule_for(did, clock.iso(lo), clock.iso(hi), kinds=("EXCEPTION",))
        leave = [(_iso_dt(i["starts_at_utc"]), _iso_dt(i["ends_at_utc"])) for i in items
                 if i["type"] == "schedule_exception" and i.get("kind") == "leave"
                 and i.get("clinic_id") in (clinic_id, clinic_store.EVERYWHERE)]
        day = first
        while day <= last:
            for i in items:
                if i.get("clinic_id") != clinic_id:
                    continue
                iv = _interval_on(i, day, schedule)
                if iv is None:
                    continue
                minutes = _overlap(iv, iv) - sum(_overlap(iv, lv) for lv in leave)
                if minutes <= 0:
                    continue
                row = out.setdefault(day.isoformat(), {})
                row[f"d|{did}|smin"] = row.get(f"d|{did}|smin", 0) + minutes
                bid = i.get("branch_id")
                if bid:
                    row[f"b|{bid}|smin"] = row.get(f"b|{bid}|smin", 0) + minutes
                    busy.setdefault((day.isoformat(), bid), []).append(iv)
            day += timedelta(days=1)
    for (day_iso, bid), intervals in busy.items():
        covered = _union_minutes(intervals)
        for r in (branches.get(bid) or {}).get("resources") or []:
            row = out.setdefault(day_iso, {})
            units = int(r.get("capacity") or 1)
            row[f"r|{r['resource_id']}|smin"] = covered * units
    return out


def _iso_dt(iso: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _interval_on(item: dict[str, Any], day: date, schedule: Any) -> Optional[tuple[Any, Any]]:
    """The UTC interval a template or extra hours give on a local day, or None."""
    if item["type"] == "schedule_template":
        if schedule.WEEKDAYS[day.weekday()] != item["weekday"]:
            return None
        if item.get("valid_from") and day < date.fromisoformat(item["valid_from"]):
            return None
        if item.get("valid_until") and day > date.fromisoformat(item["valid_until"]):
            return None
    elif item["type"] == "schedule_exception" and item.get("kind") == "extra":
        if not date.fromisoformat(item["date_from"]) <= day <= date.fromisoformat(item["date_until"]):
            return None
    else:
        return None
    return schedule.local_interval(day, time.fromisoformat(item["start"]), time.fromisoformat(item["end"]),
                                   item["time_zone"])


def _union_minutes(intervals: list[tuple[Any, Any]]) -> int:
    total, end = 0, None
    for s, e in sorted(intervals):
        if end is None or s >= end:
            total += int((e - s).total_seconds() // 60)
            end = e
        elif e > end:
            total += int((e - end).total_seconds() // 60)
            end = e
    return total


def forbid_comments(caller: Any) -> None:
    if caller.role == "doctor":
        raise forbidden("role_not_allowed", "a doctor never reads feedback comments")
