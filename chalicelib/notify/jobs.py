"""Event handlers, scheduled jobs and the notifications queue's consumer of the notify feature.

Each handler tells one person one thing about one event; its message key is ``<event id>:<kind>``, so a
consumer that runs it twice (a retry, the stream and the drain both) sends nothing twice.

``deliver_notifications`` is the consumer of the notifications queue (SQS into a Lambda; see
notify/delivery.py): each record is one message key, delivered on its own, and a batch answers with the
records that failed only (Powertools' batch utility, ``ReportBatchItemFailures`` on the event source
mapping), each of them due again after a growing delay.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Optional

from chalice.app import Blueprint

bp = Blueprint(__name__)

# The queue ``@on_sqs_message`` names: the local runner's (moto) queue. In AWS the stack maps its own queue
# (clinic-backend-<stage>-notifications) to this function and drops the event source Chalice declares.
NOTIFICATIONS_QUEUE = "clinic-backend-local-notifications"
BATCH_SIZE = 10

Handler = Callable[[dict[str, Any]], None]


def event_handlers(service: Any) -> dict[str, list[tuple[str, Handler]]]:
    def tell(kind: str, when: Callable[[dict[str, Any]], bool] = lambda d: True) -> Handler:
        def handler(event: dict[str, Any]) -> None:
            data = event["data"]
            if not data.get("patient_id") or not when(data):
                return
            service.send(data["patient_id"], kind, f"{event['event_id']}:{kind}",
                         {"start_utc": data.get("start_utc"), "time_zone": data.get("time_zone")},
                         link=(f"feedback/{data['booking_id']}" if kind == "feedback_request" else
                               f"booking/{data['booking_id']}") if data.get("booking_id") else None)
        return handler

    def plan_reminders(event: dict[str, Any]) -> None:
        data = dict(event["data"])
        if data.get("new_start_utc"):  # booking.rescheduled carries the old visit and its new start
            data["start_utc"] = data["new_start_utc"]
        if data.get("status") in ("held", "confirmed") and data.get("start_utc") and data.get("patient_id") \
                and data.get("time_zone"):
            service.plan_reminders(data)
            service.plan_preparation(data["booking_id"])

    def plan_recall(event: dict[str, Any]) -> None:
        data = event["data"]
        if data.get("patient_id") and data.get("service_id") and data.get("start_utc") and data.get("time_zone"):
            service.plan_recall(data)

    def plan_follow_up(event: dict[str, Any]) -> None:
        if event["data"].get("booking_id"):
            service.plan_follow_up(event["data"])

    by_clinic = lambda d: bool(d.get("tell_patient") or d.get("by") == "clinic")  # noqa: E731

    def clinic_asks_feedback(data: dict[str, Any]) -> bool:
        from chalicelib.clinics import access as clinic_access

        return bool(clinic_access.policy(data.get("clinic_id") or "", "feedback_after_visit", True))
    def tell_visits(visits: list[dict[str, Any]], key_of: Callable[[dict[str, Any]], str]) -> None:
        """Tell each patient of these visits (still active, still ahead) that theirs may change."""
        from chalicelib.booking import store as booking_store
        from chalicelib.core import clock, db

        if not visits:
            return
        now = clock.iso(clock.now())
        ids = list(dict.fromkeys(v["booking_id"] for v in visits))
        current = {b["booking_id"]: b for b in db.batch_get([(booking_store.booking_pk(i), "BOOKING") for i in ids])}
        for bid in ids:
            b = current.get(bid)
            if not b or b.get("status") not in ("held", "confirmed") or b["start_utc"] <= now:
                continue
            service.send(b["patient_id"], "visit_may_change", key_of(b),
                         {"start_utc": b["start_utc"], "time_zone": b.get("time_zone")}, link=f"booking/{bid}")

    def leave_added(event: dict[str, Any]) -> None:
        from chalicelib import bootstrap

        data = event["data"]
        visits = bootstrap.clinics().visits_hit_by_leave(data["doctor_id"], data["clinic_id"], data["item_id"])
        # one message per (leave, booking): a second delivery of the event, or a second leave run, sends nothing
        tell_visits(visits, lambda b: f"leave:{data['item_id']}:{b['booking_id']}")

    def doctor_removed(event: dict[str, Any]) -> None:
        from datetime import timedelta

        from chalicelib.booking import models as booking_models
        from chalicelib.booking import store as booking_store
        from chalicelib.core import clock

        data = event["data"]
        if data.get("future_bookings") != "keep_for_reassignment":
            return  # with "cancel" each visit's booking.cancelled tells the patient
        now = clock.now()
        visits = booking_store.clinic_bookings_of_doctor(
            data["clinic_id"], data["doctor_id"], clock.iso(now),
            clock.iso(now + timedelta(days=booking_models.MAX_HORIZON_DAYS + 1)))
        tell_visits(visits, lambda b: f"{event['event_id']}:doctor_left:{b['booking_id']}")

    def money_told(kind: str, key_field: str, at_reception: Optional[str] = None) -> Handler:
        """Payments' and the wallet's events: keyed by the payment's own id, so two events of one payment
        (a webhook and a retry) tell once. ``at_reception``: the kind told instead when the money is handed
        back at the clinic's desk (a desk payment's refund), not credited by a bank."""
        def handler(event: dict[str, Any]) -> None:
            data = event["data"]
            if not data.get("patient_id"):
                return
            told = at_reception if at_reception and data.get("at_reception") else kind
            ref = data.get(key_field) or event["event_id"]
            link = f"payment/{data['payment_id']}" if data.get("payment_id") else \
                (f"booking/{data['booking_id']}" if data.get("booking_id") else "wallet")
            service.send(data["patient_id"], told, f"{told}:{ref}",
                         {"amount": data.get("amount"), "currency": data.get("currency")}, link=link)
        return handler

    def record_shared(event: dict[str, Any]) -> None:
        data = event["data"]
        if data.get("patient_id"):
            ref = data.get("grant_id") or event["event_id"]
            service.send(data["patient_id"], "record_shared", f"record_shared:{ref}", link="records/access")

    def record_viewed(event: dict[str, Any]) -> None:
        """Someone else read the card: told once per reader and day (a doctor reading it ten times in a visit
        is one message), never for the patient's own reads. The day is the patient's own calendar day (their
        chosen zone, else their newest device's, else the reading clinic's) on which the read happened."""
        from chalicelib.clinics import store as clinics_store
        from chalicelib.core import clock
        from chalicelib.core.tz import local_day

        data = event["data"]
        reader = data.get("reader_id")
        if not data.get("patient_id") or not reader or reader == data["patient_id"]:
            return
        zone_name = service.zone_of(data["patient_id"])
        if not zone_name and data.get("clinic_id"):
            zone_name = clinics_store.first_branch_zone(data["clinic_id"])
        day = local_day(event.get("created_at") or clock.now(), zone_name).isoformat()
        service.send(data["patient_id"], "record_viewed", f"record_viewed:{data['patient_id']}:{reader}:{day}",
                     link="records/log")

    return {
        "payment.succeeded": [("notify_payment", money_told("payment_received", "payment_id"))],
        "payment.refunded": [("notify_refund", money_told("refund_made", "refund_id", "refund_at_reception"))],
        "payment.refund_owed": [("notify_refund_owed", money_told("refund_owed", "refund_id"))],
        "cashback.earned": [("notify_cashback", money_told("cashback_earned", "entry_id"))],
        "records.grant_created": [("notify_record_shared", record_shared)],
        "records.card_read": [("notify_record_viewed", record_viewed)],
        "schedule.leave_added": [("notify_leave", leave_added)],
        "clinic.doctor_removed": [("notify_doctor_left", doctor_removed)],
        "booking.created": [("notify_reminders", plan_reminders)],
        "booking.completed": [("notify_feedback", tell("feedback_request", clinic_asks_feedback)),
                              ("notify_recall", plan_recall)],
        "records.conclusion_signed": [("notify_follow_up", plan_follow_up)],
        "records.conclusion_amended": [("notify_follow_up", plan_follow_up)],
        "booking.accepted": [("notify_reminders", plan_reminders)],
        "booking.rescheduled": [("notify_reminders", plan_reminders)],
        "waitlist.offered": [("notify_offer", tell("waitlist_offer"))],
        "booking.invited": [("notify_invitation", tell("invitation"))],
        "booking.reassigned": [("notify_reassigned", tell("reassigned"))],
        "booking.cancelled": [("notify_cancelled", tell("cancelled_by_clinic", by_clinic))],
    }


@bp.schedule("rate(5 minutes)")
def send_reminders(event):
    """Reminders that are due (the sparse REMIND#<hour> partitions of GSI2, now and the 3 hours before)."""
    from chalicelib import bootstrap
    from chalicelib.core import clock

    return bootstrap.notify().send_due_reminders(clock.now())


@bp.schedule("rate(5 minutes)")
def release_held(event):
    """Messages quiet hours held, once their morning has come (the sparse NOTIFYHELD#<hour> partitions)."""
    from chalicelib import bootstrap
    from chalicelib.core import clock

    return bootstrap.notify().release_held(clock.now())


@bp.schedule("rate(15 minutes)")
def send_care(event):
    """Preparation, recalls and follow-ups that are due (the sparse CAREDUE#<hour> partitions of GSI2)."""
    from chalicelib import bootstrap
    from chalicelib.core import clock

    return bootstrap.notify().send_due_care(clock.now())


@bp.on_sqs_message(queue=NOTIFICATIONS_QUEUE, batch_size=BATCH_SIZE, name="deliver_notifications")
def deliver_notifications(event):
    """Deliver the messages on the notifications queue; the failed ones are answered in batchItemFailures."""
    from chalicelib import bootstrap

    return consume(bootstrap.notify(), event.to_dict(), event.context)


def consume(service: Any, event: dict[str, Any], context: Optional[Any] = None) -> dict[str, Any]:
    """One batch of SQS records: each delivered on its own (``service.deliver``); a record that fails (FCM down,
    SMS refused, a body that is no notification) is retried later by SQS after ``delivery.backoff_s`` and, after
    the queue's last receive, dead-lettered; the others are done."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.core import log
    from chalicelib.notify import delivery

    outcomes: Counter[str] = Counter()

    def one(record: Any) -> None:
        try:
            key, release = delivery.parse(record.body)
            outcomes[service.deliver(key, release)] += 1
        except Exception as exc:
            attempt = int(record.attributes.approximate_receive_count or 1)
            delay = delivery.backoff_s(attempt, getattr(exc, "retry_after", None))
            if service.queue is not None:
                try:
                    service.queue.retry_later(record.receipt_handle, delay)
                except Exception as inner:  # the queue's own visibility timeout applies instead
                    log.warning("notify.retry_delay_failed", error=type(inner).__name__)
            log.warning("notify.delivery_failed", sqs_message_id=record.message_id, attempt=attempt,
                        retry_in_s=delay, error=type(exc).__name__)
            outcomes["failed"] += 1
            raise

    # a batch that failed whole is answered like any other (every record listed), not raised: the records
    # keep their own delays instead of all coming back at the queue's visibility timeout
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    result = process_partial_response(event=event, record_handler=one, processor=processor, context=context)
    log.event("job.deliver_notifications", received=len(event.get("Records") or []), **dict(outcomes))
    return dict(result)
