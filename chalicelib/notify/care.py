"""Care messages on a sparse due index keyed by the hour they are due: preparation instructions the day
before a visit, recalls N days after a completed visit, follow-ups from a signed conclusion.

| item        | PK                          | SK    | GSI2PK / GSI2SK                                      |
|-------------|-----------------------------|-------|------------------------------------------------------|
| care due    | `CAREDUE#<kind>#<booking>`  | `DUE` | `CAREDUE#<due hour UTC>` / `<due at>#<kind>#<booking>` |

One item per (kind, visit): planning again (a visit moved, a conclusion amended) puts the same key, so the
old due time leaves the index in the same write. The job (every 15 minutes) queries the current hour's
partition up to now and the ``CATCH_UP_HOURS`` before it, checks what still holds (preparation: the visit is
still booked at that start, one BatchGetItem; recall: the patient has not booked the service again, one
bounded Query of their bookings after the visit), sends once per key (notify's send record) and deletes the
item only if it was not planned again meanwhile. With 10,000 future items and 50 due a run reads the 50 and
what they need, never the others (an EventBridge Scheduler schedule per message would cost a create and a
delete per visit and a second store to keep in step with moves; the index is written in the same put).

Times are on the clinic's wall clock: preparation at 12:00 the local day before the visit (right away when
the visit is booked later than that), recalls and follow-ups at 10:00 local (follow-ups a week before the
date the doctor set, so there is time to book), in Kaliningrad, Sakhalin or across a DST change alike.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Optional

from chalicelib.core import clock, db, log
from chalicelib.core.tz import local_day
from chalicelib.notify.store import due_in_buckets, hour_bucket, settle_due

CATCH_UP_HOURS = 6
KINDS = ("preparation", "recall", "follow_up")
PREPARATION_AT = time(12, 0)
CARE_AT = time(10, 0)
FOLLOW_UP_LEAD_DAYS = 7
GONE = ("cancelled_by_patient", "cancelled_by_clinic", "expired", "declined", "no_show")


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def at_local(day: date, wall: time, zone_name: str) -> datetime:
    from chalicelib.core.tz import local_to_utc

    return local_to_utc(day, wall, zone_name)


def bucket(at: datetime) -> str:
    return hour_bucket("CAREDUE", at)


def _pk(kind: str, bid: str) -> str:
    return db.key("CAREDUE", kind, bid)


def put(kind: str, visit: dict[str, Any], at: datetime, extra: Optional[dict[str, Any]] = None) -> None:
    bid = visit["booking_id"]
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
        "PK": _pk(kind, bid), "SK": "DUE", "type": "care_due", "kind": kind, "booking_id": bid,
        "patient_id": visit["patient_id"], "clinic_id": visit.get("clinic_id"),
        "service_id": visit.get("service_id"), "start_utc": visit["start_utc"], "time_zone": visit["time_zone"],
        "due_at": clock.iso(at), "GSI2PK": bucket(at), "GSI2SK": f"{clock.iso(at)}#{kind}#{bid}",
        "expires_at": int(at.timestamp()) + 30 * 86400, **(extra or {})}))


def drop(kind: str, bid: str) -> None:
    db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(_pk(kind, bid), "DUE"))


# ------------------------------------------------------------------ planning (event handlers)

def preparation_due(start_utc: str, zone_name: str, now: datetime) -> Optional[datetime]:
    """12:00 on the clinic's wall clock the day before; right away when that is past; None once it began."""
    start = _dt(start_utc)
    if start <= now:
        return None
    return max(at_local(local_day(start_utc, zone_name) - timedelta(days=1), PREPARATION_AT, zone_name), now)


def plan_preparation(booking: dict[str, Any]) -> bool:
    if not (booking.get("service") or {}).get("preparation"):
        return False
    at = preparation_due(booking["start_utc"], booking["time_zone"], clock.now())
    if at is None:
        return False
    put("preparation", booking, at)
    return True


def recall_due(start_utc: str, zone_name: str, days: int) -> datetime:
    return at_local(local_day(start_utc, zone_name) + timedelta(days=days), CARE_AT, zone_name)


def plan_recall(booking: dict[str, Any], days: Optional[int]) -> bool:
    if not days:
        return False
    put("recall", booking, recall_due(booking["start_utc"], booking["time_zone"], int(days)))
    return True


def _add_months(day: date, months: int) -> date:
    import calendar

    y, mo = divmod(day.month - 1 + months, 12)
    y, mo = day.year + y, mo + 1
    return date(y, mo, min(day.day, calendar.monthrange(y, mo)[1]))


def follow_up_day(visit: dict[str, Any], follow_up_date: Optional[str], months: Optional[int]) -> Optional[date]:
    if follow_up_date:
        return date.fromisoformat(follow_up_date)
    if months:
        return _add_months(local_day(visit["start_utc"], visit["time_zone"]), int(months))
    return None


def plan_follow_up(visit: dict[str, Any], follow_up_date: Optional[str], months: Optional[int]) -> bool:
    """A signed (or amended) conclusion's follow-up: put, moved, or dropped when the amendment took it out."""
    day = follow_up_day(visit, follow_up_date, months)
    if day is None:
        drop("follow_up", visit["booking_id"])
        return False
    now = clock.now()
    at = max(at_local(day - timedelta(days=FOLLOW_UP_LEAD_DAYS), CARE_AT, visit["time_zone"]), now)
    put("follow_up", visit, at, {"follow_up_day": day.isoformat()})
    return True


# ------------------------------------------------------------------ the job

def due(now: datetime) -> list[dict[str, Any]]:
    return due_in_buckets("CAREDUE", now, CATCH_UP_HOURS)


def _booked_again(r: dict[str, Any]) -> bool:
    """The patient has a booking of the same service after the visit (kept, not cancelled)."""
    from chalicelib.booking import store as booking_store

    start = clock.iso(_dt(r["start_utc"]) + timedelta(seconds=1))
    end = clock.iso(_dt(r["due_at"]) + timedelta(days=400))
    return any(v.get("service_id") == r.get("service_id") and v.get("booking_id") != r["booking_id"]
               and v.get("status") not in GONE for v in booking_store.patient_visits(r["patient_id"], start, end))


def run(notify: Any, now: datetime) -> dict[str, int]:
    """Send every care message that is due, once per (kind, visit, due time); a second run sends nothing."""
    from chalicelib.booking import store as booking_store

    items = due(now)
    if not items:
        return {"due": 0, "sent": 0, "skipped": 0, "failed": 0}
    preps = [r for r in items if r["kind"] == "preparation"]
    bookings = {b["booking_id"]: b for b in db.batch_get(
        [(booking_store.booking_pk(r["booking_id"]), "BOOKING") for r in preps])} if preps else {}
    sent = skipped = failed = 0
    # ten at a time, as the reminder job: their messages go on the notifications queue in one batch before
    # their due items are settled, so a run that dies midway leaves what it had not queued for the next run
    for at in range(0, len(items), 10):
        settled = []
        with notify.batched():
            for r in items[at:at + 10]:
                kind, bid = r["kind"], r["booking_id"]
                if kind == "preparation":
                    b = bookings.get(bid)
                    go = bool(b and b.get("status") in ("held", "confirmed") and b.get("start_utc") == r["start_utc"])
                    params, link = {"start_utc": r["start_utc"], "time_zone": r["time_zone"]}, f"booking/{bid}"
                elif kind == "recall":
                    go = not _booked_again(r)
                    params, link = {}, f"recall/{bid}"
                else:
                    go = True
                    params, link = {}, f"follow-up/{bid}"
                if go:
                    try:
                        notify.send(r["patient_id"], kind, f"care:{kind}:{bid}:{r['due_at']}", params, link=link)
                    except Exception as exc:  # tried again next run; the others go out now
                        failed += 1
                        log.warning("job.care_failed", kind=kind, booking_id=bid, error=type(exc).__name__)
                        continue
                    sent += 1
                else:
                    skipped += 1
                settled.append(r)
        for r in settled:
            settle_due(r)
    log.event("job.care", due=len(items), sent=sent, skipped=skipped, failed=failed)
    return {"due": len(items), "sent": sent, "skipped": skipped, "failed": failed}
