"""Follow-ups of the events that change a doctor's "my patients" (records/patients.py), by kind.

Each handler recomputes the rows it is about from the truth, so it is idempotent, may be retried and may run
in any order with the others; it never reads or writes card content.
"""
from __future__ import annotations

from typing import Any, Callable

Handler = Callable[[dict[str, Any]], None]

# a visit booked, confirmed, moved, given to another doctor, cancelled, lapsed or done changes the next visit
BOOKING_EVENTS = ("created", "paid", "accepted", "rescheduled", "reassigned", "cancelled", "declined", "expired",
                  "completed", "no_show")
NAME = "records_my_patients"


def event_handlers(service: Any) -> dict[str, list[tuple[str, Handler]]]:
    care = service.care

    def grant_changed(event: dict[str, Any]) -> None:
        care.grant_changed(event["data"])

    def conclusion(event: dict[str, Any]) -> None:
        data = event["data"]
        if data.get("patient_id") and data.get("doctor_id"):
            care.refresh(data["patient_id"], [data["doctor_id"]])

    def visit_changed(event: dict[str, Any]) -> None:
        data = event["data"]
        if data.get("patient_id") and data.get("booking_id"):
            care.refresh(data["patient_id"], [data.get("doctor_id"), data.get("from_doctor_id")],
                         booking_id=data["booking_id"], only_listed=True)

    def membership(event: dict[str, Any]) -> None:
        data = event["data"]
        care.membership_changed(data["clinic_id"], data["doctor_id"])

    return {
        "records.grant_created": [(NAME, grant_changed)],
        "records.grant_revoked": [(NAME, grant_changed)],
        "records.conclusion_signed": [(NAME, conclusion)],
        "records.conclusion_amended": [(NAME, conclusion)],
        "clinic.doctor_joined": [(NAME, membership)],
        "clinic.doctor_removed": [(NAME, membership)],
        **{f"booking.{kind}": [(NAME, visit_changed)] for kind in BOOKING_EVENTS},
    }
