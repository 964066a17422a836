"""Event handlers of the payments feature (the outbox runs each at most once to success; each is idempotent).

- ``booking.cancelled`` / ``booking.no_show``: refund what the clinic's policy says (or stop an open payment);
- ``booking.expired``: a lapsing hold cancels its intent (or expires its Checkout Session);
- ``payment.refund_requested``: ask the provider for a reserved refund (idempotency key: the refund id);
- ``payment.link_created``: the SMS with the link (the clinic and the amount only);
- ``payment.failed`` / ``payment.refunded`` (money back for a visit that no longer exists): tell the patient.
"""
from __future__ import annotations

from typing import Any, Callable

Handler = Callable[[dict[str, Any]], None]


def event_handlers(service: Any) -> dict[str, list[tuple[str, Handler]]]:
    return {
        "booking.cancelled": [("payments_policy_refund", service.refund_by_policy)],
        "booking.no_show": [("payments_policy_refund", service.refund_by_policy)],
        "booking.expired": [("payments_cancel_intent", service.refund_by_policy)],
        "payment.refund_requested": [("payments_submit_refund", lambda e: service.submit_refund(e["data"]))],
        "payment.link_created": [("payments_link_sms", lambda e: service.text_link(e["data"]))],
        "payment.failed": [("payments_tell_failed", lambda e: service.tell(e, "payment_failed"))],
        "payment.refunded": [("payments_tell_refunded", service.refund_late_notice)],
    }
