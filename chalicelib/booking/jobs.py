"""Scheduled work and event consumers of the booking feature."""
from __future__ import annotations

from typing import Any, Callable

from chalice.app import Blueprint

from chalicelib.core import log

bp = Blueprint(__name__)


@bp.schedule("rate(1 minute)")
def expire_holds(event):
    """Release holds whose time ran out (unpaid bookings, unanswered offers and invitations).
    Reads only the holds that are due, through the sparse GSI2 index."""
    from chalicelib import bootstrap

    released = bootstrap.booking().expire_due_holds()
    log.event("job.expire_holds", released=released)
    return {"released": released}


def event_handlers(service: Any) -> dict[str, list[tuple[str, Callable[[dict[str, Any]], None]]]]:
    """Follow-ups of booking events, by kind: (handler name, callable taking the event). Each runs in a
    consumer of the outbox, at most once to success per event, and may be retried. What patients are told
    (offers, invitations, visits the clinic cancelled) is said by notify's handlers (chalicelib/notify/jobs.py)."""

    def offer_freed_time(event: dict[str, Any]) -> None:
        data = event["data"]
        if data.get("offer"):
            service.offer_freed(data)

    def entry_waits_again(event: dict[str, Any]) -> None:
        service.settle_waitlist(event["data"].get("waitlist_entry"), "waiting")

    def entry_booked(event: dict[str, Any]) -> None:
        service.settle_waitlist(event["data"].get("waitlist_entry"), "booked")

    def release_old_time(event: dict[str, Any]) -> None:
        data = event["data"]
        service.release_leftover_locks(data["booking_id"], data.get("leftover_locks") or [])

    def doctor_left(event: dict[str, Any]) -> None:
        data = event["data"]
        service.doctor_left_clinic(data["clinic_id"], data["doctor_id"], data.get("future_bookings") or "")

    return {
        "booking.cancelled": [("waitlist_settle", entry_waits_again), ("waitlist_offer", offer_freed_time)],
        "booking.declined": [("waitlist_settle", entry_waits_again), ("waitlist_offer", offer_freed_time)],
        "booking.expired": [("waitlist_settle", entry_waits_again), ("waitlist_offer", offer_freed_time)],
        "booking.rescheduled": [("release_old_time", release_old_time), ("waitlist_offer", offer_freed_time)],
        "booking.accepted": [("waitlist_settle", entry_booked)],
        "clinic.doctor_removed": [("future_visits", doctor_left)],
    }
