"""Scheduled work of the booking feature."""
from __future__ import annotations

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


def event_handlers(service) -> dict:
    """Follow-ups of booking events, by kind: (handler name, callable taking the event)."""
    return {}
