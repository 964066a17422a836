"""Feedback after a visit: NPS 0-10 and a comment, one answer per completed visit, read by the clinic's
administrators only (per clinic and per doctor). A doctor never reads the answers; nothing of a comment is
logged or sent anywhere."""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import clock, log
from chalicelib.core.errors import AppError, conflict, forbidden, not_found
from chalicelib.notify import models as m
from chalicelib.notify import store


def band(score: int) -> str:
    return "promoters" if score >= 9 else "passives" if score >= 7 else "detractors"


def give(caller: Any, body: m.FeedbackIn) -> dict[str, Any]:
    from chalicelib.booking import store as booking_store

    if caller.role != "patient":
        raise forbidden("role_not_allowed", "feedback is given by the visit's patient")
    b = booking_store.get_booking(body.booking_id)
    if not b or b.get("patient_id") != caller.user_id:
        raise not_found()
    if b.get("status") != "completed":
        raise conflict("wrong_status", "feedback is given after a completed visit")
    answer = {"booking_id": b["booking_id"], "clinic_id": b["clinic_id"], "doctor_id": b["doctor_id"],
              "score": body.score, "comment": body.comment, "band": band(body.score),
              "created_at": clock.iso(clock.now())}
    if not store.add_feedback(answer):
        raise AppError(code="feedback_given", status=409, detail="this visit has its answer already")
    log.event("feedback.given", booking_id=b["booking_id"], clinic_id=b["clinic_id"])
    return {"booking_id": b["booking_id"], "score": body.score}


def _summary(stats: Optional[dict[str, Any]]) -> dict[str, Any]:
    stats = stats or {}
    n = int(stats.get("answers") or 0)
    counts = {k: int(stats.get(k) or 0) for k in ("promoters", "passives", "detractors")}
    nps = round(100 * (counts["promoters"] - counts["detractors"]) / n) if n else None
    average = round(int(stats.get("score_sum") or 0) / n, 1) if n else None
    return {"answers": n, **counts, "nps": nps, "average": average}


def read(caller: Any, clinic_id: str, q: m.FeedbackQuery) -> dict[str, Any]:
    from chalicelib.clinics import access as clinic_access

    clinic_access.require_admin(caller, clinic_id)
    stats = store.feedback_stats(clinic_id, q.doctor_id)
    given = None
    if q.date_from is not None and q.date_to is not None:
        from datetime import time, timedelta

        from chalicelib.clinics import store as clinic_store
        from chalicelib.core import clock
        from chalicelib.core.tz import local_to_utc

        zone_name = clinic_store.first_branch_zone(clinic_id) or "Etc/UTC"  # no branch yet: no visits, no answers
        start = local_to_utc(q.date_from, time(0), zone_name)
        end = local_to_utc(q.date_to + timedelta(days=1), time(0), zone_name)
        given = (clock.iso(start), clock.iso(end))  # "<end>" sorts before "<end>#<id>": the next day is out
    items, cursor = store.feedback_page(clinic_id, q.doctor_id, q.limit, q.cursor, given)
    out: dict[str, Any] = {
        "items": [{k: i.get(k) for k in ("booking_id", "doctor_id", "score", "comment", "created_at")
                   if i.get(k) is not None} for i in items],
        "clinic": _summary(stats.get("STATS#ALL")), "next_cursor": cursor}
    if q.doctor_id:
        out["doctor"] = _summary(stats.get(f"STATS#DOCTOR#{q.doctor_id}"))
    return out
