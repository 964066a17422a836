"""Event handlers and scheduled work of analytics.

``EVENTS`` is the one table from an outbox event's kind to what analytics does with it (names other
features emit may shift at merge: change them here only). Every handler is idempotent: it recomputes its
source's contribution and writes only the difference (``service._apply``).

The same handlers put operational metrics out through Powertools Metrics (CloudWatch embedded metric format:
a JSON log line CloudWatch turns into metrics, no API call). Powertools is imported here, on the consumer's
path, never on a request's (cold start is measured).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from chalice.app import Blueprint

bp = Blueprint(__name__)

Handler = Callable[[dict[str, Any]], None]

BOOKING = "booking"
# kind -> (what to apply, the operational metric it counts or None)
EVENTS: dict[str, tuple[str, Optional[str]]] = {
    "booking.created": (BOOKING, "BookingsCreated"),
    "booking.invited": (BOOKING, None),
    "waitlist.offered": (BOOKING, None),
    "booking.accepted": (BOOKING, None),
    "booking.declined": (BOOKING, None),
    "booking.expired": (BOOKING, None),
    "booking.paid": (BOOKING, None),
    "booking.rescheduled": (BOOKING, None),
    "booking.reassigned": (BOOKING, None),
    "booking.cancelled": (BOOKING, "BookingsCancelled"),
    "booking.completed": (BOOKING, "VisitsCompleted"),
    "booking.no_show": (BOOKING, "NoShows"),
    "records.conclusion_signed": ("conclusion", None),
    "feedback.given": ("feedback", "FeedbackAnswers"),
    "payment.succeeded": ("payment", "Payments"),
    "payment.refunded": ("refund", "Refunds"),
    "cashback.earned": ("cashback:earned", None),  # the wallet's movements, each in its own transaction
    "cashback.reversed": ("cashback:reversed", None),
    "wallet.spent": ("cashback:spent", None),
    "cashback.returned": ("cashback:returned", None),
    "cashback.expired": ("cashback:expired", None),
    "analytics.recall": ("recall", "RecallsQueued"),
}

NAMESPACE = "ClinicBackend"
_metrics: Any = None


def metrics() -> Any:
    """The Powertools ``Metrics`` of this process (made on first use; its import stays off request paths)."""
    global _metrics
    if _metrics is None:
        from aws_lambda_powertools import Metrics

        from chalicelib import bootstrap

        _metrics = Metrics(namespace=NAMESPACE, service="clinic-backend")
        _metrics.set_default_dimensions(stage=bootstrap.settings().stage)
    return _metrics


def count(name: str, value: int = 1) -> None:
    """One operational metric, written at once as one EMF line (per stage)."""
    from aws_lambda_powertools.metrics import MetricUnit

    m = metrics()
    m.add_metric(name=name, unit=MetricUnit.Count, value=value)
    m.flush_metrics()


def event_handlers(service: Any) -> dict[str, list[tuple[str, Handler]]]:
    def handler_for(what: str, metric: Optional[str]) -> Handler:
        def handle(event: dict[str, Any]) -> None:
            data = event["data"]
            if what == BOOKING:
                if data.get("booking_id"):
                    service.apply_booking(data["booking_id"])
            elif what == "conclusion":
                service.apply_conclusion(data)
            elif what == "feedback":
                service.apply_feedback(data)
            elif what == "payment":
                service.apply_payment(event)
            elif what == "refund":
                service.apply_refund(event)
            elif what.startswith("cashback:"):
                service.apply_cashback(what.split(":", 1)[1], event)
            elif what == "recall":
                service.send_recalls(event)
            if metric:
                count(metric)
        return handle

    return {kind: [("analytics", handler_for(what, metric))] for kind, (what, metric) in EVENTS.items()}


def notification_metric(outcome: str) -> None:
    """Notifications sent or failed, for the alarm on failed pushes (called by notify's senders). A metric
    that cannot be written never fails the message."""
    try:
        count("NotificationsFailed" if outcome == "failed" else "NotificationsSent")
    except Exception as exc:  # pragma: no cover - metrics are best effort
        from chalicelib.core import log

        log.warning("metrics.failed", error=type(exc).__name__)


@bp.schedule("rate(6 hours)")
def snapshot_schedules(event):
    """Each active clinic's scheduled minutes for yesterday to two weeks ahead (the denominator of the fill
    rate), set on its day counters: past days keep the schedule as it stood."""
    from chalicelib import bootstrap

    return bootstrap.analytics().snapshot_all()
