"""Event handlers (and, later, scheduled jobs) of the notify feature.

Each handler tells one person one thing about one event; its message key is ``<event id>:<kind>``, so a
consumer that runs it twice (a retry, the stream and the drain both) sends nothing twice.
"""
from __future__ import annotations

from typing import Any, Callable

Handler = Callable[[dict[str, Any]], None]


def event_handlers(service: Any) -> dict[str, list[tuple[str, Handler]]]:
    def tell(kind: str, when: Callable[[dict[str, Any]], bool] = lambda d: True) -> Handler:
        def handler(event: dict[str, Any]) -> None:
            data = event["data"]
            if not data.get("patient_id") or not when(data):
                return
            service.send(data["patient_id"], kind, f"{event['event_id']}:{kind}",
                         {"start_utc": data.get("start_utc"), "time_zone": data.get("time_zone")},
                         link=f"booking/{data['booking_id']}" if data.get("booking_id") else None)
        return handler

    by_clinic = lambda d: bool(d.get("tell_patient") or d.get("by") == "clinic")  # noqa: E731
    return {
        "waitlist.offered": [("notify_offer", tell("waitlist_offer"))],
        "booking.invited": [("notify_invitation", tell("invitation"))],
        "booking.cancelled": [("notify_cancelled", tell("cancelled_by_clinic", by_clinic))],
    }
