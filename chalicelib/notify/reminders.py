"""Reminders before each visit, on a sparse due index keyed by the hour they are due.

When a visit is booked, accepted or moved (its event), one reminder item per offset is put:

| item     | PK                   | SK          | GSI2PK / GSI2SK                                            |
|----------|----------------------|-------------|------------------------------------------------------------|
| reminder | `REMINDER#<booking>` | `H#<hours>` | `REMIND#<due hour UTC>` / `<due at>#<booking>#<hours>`     |

Moving a visit puts the same keys again, so the old due time leaves the index in the same write. The job
(every 5 minutes) queries the current hour's partition up to now and the three hours before it (a job that
was down catches up; a reminder later than that is no longer worth sending and lapses by TTL), reads the
bookings of what is due in one BatchGetItem, sends, and deletes each sent reminder (only if it was not
moved meanwhile). With 10,000 future visits and 50 due, a run reads the 50 reminders and their 50 bookings.

Offsets of whole days are kept on the clinic's wall clock (a visit at 09:00 is reminded at 09:00 the day
before, in Kaliningrad or Sakhalin, on either side of a daylight-saving change); shorter ones are exact
hours before the start.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import clock, db, log
from chalicelib.notify.store import due_in_buckets, hour_bucket, settle_due

CATCH_UP_HOURS = 3
ACTIVE = ("held", "confirmed")  # visits that will happen (offers and invitations are not visits yet)


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def due_at(start_utc: str, zone_name: str, hours: int) -> datetime:
    from chalicelib.core.tz import local_to_utc, zone

    start = _dt(start_utc)
    if hours % 24:
        return start - timedelta(hours=hours)
    local = start.astimezone(zone(zone_name))
    day = (local - timedelta(days=hours // 24)).date()
    return local_to_utc(day, local.time().replace(tzinfo=None), zone_name)


def bucket(at: datetime) -> str:
    return hour_bucket("REMIND", at)


def schedule(booking: dict[str, Any], offsets: list[int]) -> int:
    """Put the reminders of a visit (again, when it moved). Past due times are left out."""
    now = clock.now()
    start = booking["start_utc"]
    written = 0
    for hours in offsets:
        at = due_at(start, booking["time_zone"], hours)
        if at <= now:
            continue
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
            "PK": db.key("REMINDER", booking["booking_id"]), "SK": f"H#{hours}", "type": "reminder",
            "booking_id": booking["booking_id"], "patient_id": booking["patient_id"], "start_utc": start,
            "time_zone": booking["time_zone"], "hours": hours, "due_at": clock.iso(at),
            "GSI2PK": bucket(at), "GSI2SK": f"{clock.iso(at)}#{booking['booking_id']}#{hours}",
            "expires_at": int(_dt(start).timestamp()) + 86400}))
        written += 1
    return written


def due(now: datetime) -> list[dict[str, Any]]:
    return due_in_buckets("REMIND", now, CATCH_UP_HOURS)


def run(notify: Any, now: datetime) -> dict[str, int]:
    """Send every reminder that is due: once per visit, offset and start (a second run sends nothing)."""
    from chalicelib.booking import store as booking_store

    items = due(now)
    if not items:
        return {"due": 0, "sent": 0, "skipped": 0, "failed": 0}
    bookings = {b["booking_id"]: b for b in db.batch_get(
        [(booking_store.booking_pk(i["booking_id"]), "BOOKING") for i in items])}
    sent = skipped = failed = 0
    # ten at a time: their messages go on the notifications queue in one batch before their reminders are
    # deleted, so a run that dies midway leaves what it had not queued for the next run
    for at in range(0, len(items), 10):
        chunk, settled = items[at:at + 10], []
        with notify.batched():
            for r in chunk:
                b = bookings.get(r["booking_id"])
                if not (b and b.get("status") in ACTIVE and b.get("start_utc") == r["start_utc"]):
                    settled.append(r)
                    skipped += 1  # cancelled, or moved (its new reminder is another item's key)
                    continue
                try:
                    notify.send(r["patient_id"], "reminder",
                                f"reminder:{r['booking_id']}:{r['hours']}:{r['start_utc']}",
                                {"start_utc": r["start_utc"], "time_zone": r["time_zone"]},
                                link=f"booking/{r['booking_id']}")
                except Exception as exc:  # this one is tried again next run; the others go out now
                    failed += 1
                    log.warning("job.reminder_failed", booking_id=r["booking_id"], error=type(exc).__name__)
                    continue
                settled.append(r)
                sent += 1
        for r in settled:
            settle_due(r)
    log.event("job.reminders", due=len(items), sent=sent, skipped=skipped, failed=failed)
    return {"due": len(items), "sent": sent, "skipped": skipped, "failed": failed}
