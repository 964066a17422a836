"""Helpers of the wallet tests: clinics with cashback policies, and the events payments and booking raise,
written exactly as they will be (``db.Tx().event(...)`` committed, then the outbox drains)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from chalicelib.core import db
from chalicelib.core.ids import new_id


def clinic(currency: str = "RUB", **policies: Any) -> str:
    """A clinic profile as the clinics feature stores it, with the given cashback policies."""
    cid = new_id()
    db.put_new({"PK": f"CLINIC#{cid}", "SK": "PROFILE", "type": "clinic", "clinic_id": cid, "status": "active",
                "currency": currency, "policies": {"cashback_percent": 10, "cashback_max_spend_percent": 50,
                                                   "cashback_expiry_days": 365, **policies}})
    return cid


def raise_event(kind: str, data: dict[str, Any]) -> str:
    tx = db.Tx()
    eid = tx.event(kind, data)
    tx.commit()
    return eid


def paid(payment_id: str, booking_id: Optional[str], pid: str, cid: str, amount: int, currency: str = "RUB",
         cashback_spent: int = 0, method: str = "card") -> str:
    return raise_event("payment.succeeded", {
        "payment_id": payment_id, "booking_id": booking_id, "patient_id": pid, "clinic_id": cid,
        "doctor_id": new_id(), "amount": amount, "currency": currency, "method": method,
        "cashback_spent": cashback_spent})


def refunded(payment_id: str, booking_id: Optional[str], pid: str, cid: str, amount: int, refunded_total: int,
             paid_amount: int, currency: str = "RUB", reason: str = "patient_cancelled") -> str:
    return raise_event("payment.refunded", {
        "payment_id": payment_id, "refund_id": new_id(), "booking_id": booking_id, "patient_id": pid,
        "clinic_id": cid, "amount": amount, "refunded_total": refunded_total, "paid_amount": paid_amount,
        "currency": currency, "reason": reason})


def released(payment_id: str, pid: str, cid: str, cashback_spent: int) -> str:
    return raise_event("payment.released", {"payment_id": payment_id, "patient_id": pid, "clinic_id": cid,
                                            "cashback_spent": cashback_spent})


def completed(booking_id: str, pid: str, cid: str) -> str:
    """What booking's ``_mark_visit`` writes (its snapshot of the visit and the new status)."""
    return raise_event("booking.completed", {
        "booking_id": booking_id, "kind": "regular", "status": "completed", "patient_id": pid,
        "doctor_id": new_id(), "clinic_id": cid, "branch_id": new_id(), "service_id": new_id(),
        "start_utc": "2026-11-24T07:00:00Z", "end_utc": "2026-11-24T07:40:00Z",
        "time_zone": "Europe/Kaliningrad"})


def spend(pid: str, cid: str, amount: int, now: datetime, payment_id: Optional[str] = None) -> str:
    """What payments does: read, then spend in its own transaction (here with nothing else in it)."""
    from chalicelib import bootstrap

    w = bootstrap.wallet()
    payment_id = payment_id or new_id()
    seen = w.read(pid, cid, now)
    db.Tx().extend(w.spend_ops(pid, cid, amount, payment_id, now, seen["version"])).commit()
    return payment_id


def entries_sum(pid: str, cid: str) -> int:
    from chalicelib.payments import wallet_store

    return sum(int(e["amount"]) for e in wallet_store.all_entries(pid, cid))
