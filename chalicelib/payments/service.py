"""Money for visits: online prepayment, payment links, the provider's webhooks, refunds, desk payments, history.

Rules (docs/architecture.md, "Payments"):
- One current payment per booking (``BOOKING#<bid>/PAYMENT``, an attempt counter). Asking again for the same
  amount answers the same intent; a new amount cancels the old intent and makes attempt n+1. The payment id
  ``<bid>-<n>`` and the provider's idempotency key are derived from the booking, the attempt and the amounts,
  so a retry after a timeout or a 503 finds the same intent, and nothing is written until it exists.
- Webhooks: each provider event id is written (``PAYEVENT#<id>``, ``attribute_not_exists``) in the same
  transaction as its effect; every state change is conditional on the status and version read, so a stale or
  repeated event changes nothing. Money that arrives for a booking that is no longer held (it lapsed, was
  cancelled, or another payment confirmed it) is recorded and refunded in full, and the patient told.
- Refunds reserve their amount on the payment (version-checked: never more than paid, also concurrently) in
  the transaction that writes the refund and its event; the outbox handler asks the provider (idempotency key
  = the refund id) and records the outcome. A desk payment's refund by staff is handed back at the desk:
  recorded at once. A policy refund of a desk payment is *owed* at the reception (``owed_at_reception``) until
  staff mark it paid out (who, when); its cashback is reversed when it is owed (``payment.refund_owed``).
- A policy refund covers every payment the booking kept (``policy_plan``): the policy's share of all that was
  paid, less what already went back, taken from online payments before desk ones (money goes back to the
  card without anyone at the desk), in the order they were made, never more than each one has left.
- A refund made outside the backend (Stripe's dashboard) arrives as ``charge.refunded`` / ``refund.*``
  without our metadata: it is recorded under an id derived from the provider's refund id (so every event
  and replay of it records it once), reserved on its payment like ours, and emits ``payment.refunded``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, datetime, time, timedelta
from typing import Any, Optional

from chalicelib.booking import store as booking_store
from chalicelib.clinics import store as clinic_store
from chalicelib.core import clock, db, log
from chalicelib.core.errors import AppError, conflict, field_invalid, forbidden, not_found
from chalicelib.core.ids import is_ulid, new_id
from chalicelib.core.money import Money
from chalicelib.core.tz import local_to_utc, zone
from chalicelib.payments import access, store

REFUND_NAMES = {"full": "full", "late_cancel": "late_cancel", "no_show": "no_show"}
OWED = "owed_at_reception"  # a desk payment's policy refund, until staff hand the money back
# the provider's refund statuses in ours (requires_action waits for the customer: still pending)
REFUND_STATUS = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}
CSV_COLUMNS = ("date", "time", "kind", "payment_id", "booking_id", "method", "status", "amount", "currency",
               "cashback_spent", "refunded", "doctor_id", "service", "reason")


def _iso(dt: datetime) -> str:
    return clock.iso(dt)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _attempt(payment_id: str) -> int:
    return int(payment_id.rsplit("-", 1)[1])


class PaymentsService:
    def __init__(self, settings: Any, gateway: Any, sms: Any, booking: Any, wallet: Any = None) -> None:
        self.s = settings
        self.gw = gateway
        self.sms = sms
        self.booking = booking
        self.wallet = wallet  # chalicelib/payments/wallet.py (the cashback ledger), when it is there

    def _now(self) -> datetime:
        return clock.now().replace(microsecond=0)

    def fee(self, amount: int) -> int:
        return Money(amount, "EUR").percent(int(self.s.payments_platform_fee_bp)).amount

    # ------------------------------------------------------------------ the patient pays in the app

    def create_intent(self, caller: Any, bid: str, spend: int) -> dict[str, Any]:
        """What PaymentSheet needs to pay the held booking's prepayment, less the cashback spent."""
        access.require_patient(caller)
        if not is_ulid(bid):
            raise not_found()
        now = self._now()
        got = {(i["PK"], i["SK"]): i for i in db.batch_get([
            (booking_store.booking_pk(bid), "BOOKING"), store.payref_key(bid), store.customer_key(caller.user_id)])}
        b = got.get((booking_store.booking_pk(bid), "BOOKING"))
        if b is None or b["patient_id"] != caller.user_id:
            raise not_found()
        ref = got.get(store.payref_key(bid))
        customer = got.get(store.customer_key(caller.user_id))
        due, clinic = self._payable(b, now)
        if spend > due["amount"] - 1:
            raise field_invalid("cashback_spend", "exceeds_amount",
                                "cashback covers at most the prepayment less one minor unit paid by card")
        amount = due["amount"] - spend
        if ref and ref.get("status") == "succeeded":
            raise conflict("already_paid", "this booking is paid")
        if ref and ref.get("status") == "pending" and ref.get("method") == "online" and ref["amount"] == amount \
                and ref["cashback_spent"] == spend:
            intent = self.gw.get_intent(ref["intent_id"])
            if intent.status == "pending":
                return self._sheet(ref["payment_id"], intent.client_secret, ref["customer_id"], amount,
                                   due["currency"], spend)
        seq = int(ref["seq"]) + 1 if ref else 1
        payment_id = f"{bid}-{seq}"
        version = None
        if spend:
            if self.wallet is None:
                raise field_invalid("cashback_spend", "cashback_unavailable", "cashback cannot be spent yet")
            w = self.wallet.read(caller.user_id, b["clinic_id"], now)
            if spend > int(w["balance"]):
                raise field_invalid("cashback_spend", "exceeds_balance", "more than the cashback balance")
            version = w["version"]
        customer_id = customer["customer_id"] if customer else \
            self.gw.ensure_customer(caller.user_id, idempotency_key=f"customer-{caller.user_id}")
        old = self._end_old(ref)
        intent = self.gw.create_intent(
            amount=amount, currency=due["currency"], customer=customer_id,
            destination=clinic["payouts"]["account_id"], fee=self.fee(amount),
            metadata={"payment_id": payment_id, "booking_id": bid, "clinic_id": b["clinic_id"]},
            idempotency_key=f"intent-{payment_id}-{amount}-{spend}")
        p = self._new_payment(b, payment_id, "online", amount, due["currency"], spend, now,
                              intent_id=intent.intent_id, customer_id=customer_id)
        tx = db.Tx().put_new("new_payment", store.payment_item(p))
        store.put_payref(tx, bid, self._ref(p, seq), int(ref["seq"]) if ref else 0)
        if customer is None:
            pk, sk = store.customer_key(caller.user_id)
            tx.put("customer", {"PK": pk, "SK": sk, "type": "pay_customer", "customer_id": customer_id})
        if old is not None:
            self._cancel_ops(tx, old, now)
        if spend:
            tx.extend(self.wallet.spend_ops(caller.user_id, b["clinic_id"], spend, payment_id, now, version))
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.condition_failed("wallet", "cashback", "spend", "ledger"):
                raise conflict("cashback_changed", "the cashback balance changed; ask again") from None
            raise conflict("payment_changed", "another payment request for this booking came first; ask again") \
                from None
        log.event("payment.intent_created", payment_id=payment_id, booking_id=bid, attempt=seq)
        return self._sheet(payment_id, intent.client_secret, customer_id, amount, due["currency"], spend)

    def _sheet(self, payment_id: str, secret: Optional[str], customer_id: str, amount: int, currency: str,
               spend: int) -> dict[str, Any]:
        return {"payment_id": payment_id, "amount": {"amount": amount, "currency": currency},
                "cashback_spent": {"amount": spend, "currency": currency}, "client_secret": secret,
                "customer": customer_id, "ephemeral_key": self.gw.customer_key(customer_id),
                "publishable_key": self.gw.publishable_key(), "status": "pending"}

    def _payable(self, b: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """The prepayment still due on a held booking, and its clinic (which must take money online)."""
        if b["status"] != "held":
            raise conflict("wrong_status", f"the booking is {b['status']}; only a held booking is paid for")
        if not b.get("prepayment"):
            raise conflict("no_prepayment", "this booking needs no prepayment")
        if b.get("hold_until") and _dt(b["hold_until"]) <= now:
            raise conflict("hold_lapsed", "the time was held until " + b["hold_until"])
        clinic = clinic_store.get_clinic(b["clinic_id"]) or {}
        payouts = clinic.get("payouts") or {}
        if not payouts.get("charges_enabled") or not payouts.get("account_id"):
            raise conflict("payouts_not_ready", "the clinic cannot take payments online now")
        return b["prepayment"], clinic

    def _end_old(self, ref: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        """Stop the booking's earlier payment at the provider before a new one: the payment to mark cancelled,
        or None when there is none still open."""
        if not ref or ref.get("status") in ("succeeded", "cancelled"):
            return None
        old = store.get_payment(ref["payment_id"])
        if old is None or old["status"] == "cancelled":
            return None
        if old["status"] == "succeeded":
            raise conflict("already_paid", "this booking is paid")
        if old.get("provider") == "desk":
            return None
        ended = self.gw.expire_checkout(old["checkout_id"]) if old.get("checkout_id") \
            else self.gw.cancel_intent(old["intent_id"])
        if ended == "succeeded":
            raise conflict("payment_in_progress", "the earlier payment has just gone through")
        return old

    def _cancel_ops(self, tx: db.Tx, p: dict[str, Any], now: datetime, name: str = "old_payment") -> None:
        store.update_payment(tx, p, {"status": "cancelled", "ended_at": _iso(now)}, ("pending", "failed"), name=name)
        if int(p.get("cashback_spent") or 0):
            tx.event("payment.released", {"payment_id": p["payment_id"], "patient_id": p["patient_id"],
                                          "clinic_id": p["clinic_id"], "cashback_spent": p["cashback_spent"]})

    @staticmethod
    def _ref(p: dict[str, Any], seq: int) -> dict[str, Any]:
        return {"payment_id": p["payment_id"], "seq": seq, "status": p["status"], "method": p["method"],
                "amount": p["amount"], "cashback_spent": p["cashback_spent"], "intent_id": p.get("intent_id"),
                "customer_id": p.get("customer_id")}

    @staticmethod
    def _new_payment(b: dict[str, Any], payment_id: str, method: str, amount: int, currency: str, spend: int,
                     now: datetime, **extra: Any) -> dict[str, Any]:
        return {"payment_id": payment_id, "booking_id": b["booking_id"], "patient_id": b["patient_id"],
                "clinic_id": b["clinic_id"], "doctor_id": b["doctor_id"], "service_name": b["service"]["name"],
                "clinic_name": b.get("clinic_name"), "visit_start_utc": b["start_utc"], "time_zone": b["time_zone"],
                "method": method, "status": "pending", "amount": amount, "currency": currency,
                "cashback_spent": spend, "refunded_total": 0, "provider": "desk" if method in ("cash", "card_terminal")
                else "stripe", "created_at": _iso(now), "version": 1,
                **{k: v for k, v in extra.items() if v is not None}}

    # ------------------------------------------------------------------ staff: a payment link by SMS

    def send_link(self, caller: Any, cid: str, bid: str) -> dict[str, Any]:
        clinic = access.require_clinic_admin(caller, cid)
        b = booking_store.get_booking(bid)
        if b is None or b["clinic_id"] != cid:
            raise not_found()
        now = self._now()
        ref = db.get(*store.payref_key(bid))
        due, _ = self._payable(b, now)
        if ref and ref.get("status") == "succeeded":
            raise conflict("already_paid", "this booking is paid")
        seq = int(ref["seq"]) + 1 if ref else 1
        payment_id = f"{bid}-{seq}"
        old = self._end_old(ref)
        hold = _dt(b["hold_until"]) if b.get("hold_until") else now + timedelta(hours=1)
        # Stripe keeps a session open 30 minutes at least: a link for a hold that lapses sooner stays payable
        # a little longer, and money that comes after the lapse is refunded (the late-payment rule).
        expires = int(max(hold, now + timedelta(minutes=31)).timestamp())
        base = (self.s.portal_base_url or self.s.public_base_url).rstrip("/")
        name = (b.get("clinic_name") or {}).get("en") or "Visit"
        session = self.gw.create_checkout(
            amount=due["amount"], currency=due["currency"], name=f"{name}: prepayment",
            destination=clinic["payouts"]["account_id"], fee=self.fee(due["amount"]),
            metadata={"payment_id": payment_id, "booking_id": bid, "clinic_id": cid}, expires_at=expires,
            success_url=f"{base}/paid", idempotency_key=f"checkout-{payment_id}-{due['amount']}")
        p = self._new_payment(b, payment_id, "link", due["amount"], due["currency"], 0, now,
                              checkout_id=session.session_id)
        tx = db.Tx().put_new("new_payment", store.payment_item(p))
        store.put_payref(tx, bid, self._ref(p, seq), int(ref["seq"]) if ref else 0)
        if old is not None:
            self._cancel_ops(tx, old, now)
        tx.event("payment.link_created", {"payment_id": payment_id, "patient_id": b["patient_id"],
                                          "clinic_id": cid, "url": session.url, "amount": due["amount"],
                                          "currency": due["currency"]})
        tx.commit_or(conflict("payment_changed", "another payment for this booking came first; ask again"))
        log.event("payment.link_created", payment_id=payment_id, booking_id=bid)
        return {"payment_id": payment_id, "url": session.url, "expires_at": _iso(datetime.fromtimestamp(
            session.expires_at, tz=now.tzinfo)), "amount": {"amount": due["amount"], "currency": due["currency"]}}

    def text_link(self, data: dict[str, Any]) -> None:
        """The SMS with the link (an outbox handler): the clinic and the amount, nothing about the visit."""
        from chalicelib.clinics import store as cstore
        from chalicelib.identity import store as identity_store

        user = identity_store.get_user(data["patient_id"])
        clinic = cstore.get_clinic(data["clinic_id"]) or {}
        if not user or not user.get("phone"):
            return
        lang = user.get("language") or "ru"
        money = _format_money(int(data["amount"]), data["currency"])
        clinic_name = (clinic.get("display_name") or {}).get(lang) or (clinic.get("display_name") or {}).get("en", "")
        if lang == "ru":
            text = f"{self.s.app_name}: {clinic_name} просит внести предоплату {money}: {data['url']}"
        else:
            text = f"{self.s.app_name}: {clinic_name} asks for a prepayment of {money}: {data['url']}"
        self.sms.send(user["phone"], text)

    # ------------------------------------------------------------------ staff: a payment at the desk

    def record_reception(self, caller: Any, cid: str, req: Any) -> dict[str, Any]:
        clinic = access.require_clinic_admin(caller, cid)
        b = booking_store.get_booking(req.booking_id)
        if b is None or b["clinic_id"] != cid:
            raise not_found()
        if req.amount.currency != clinic["currency"]:
            raise field_invalid("amount.currency", "currency_mismatch", f"the clinic takes {clinic['currency']}")
        if req.amount.amount < 1:
            raise field_invalid("amount.amount", "too_small", "at least one minor unit")
        if b["status"] not in ("held", "confirmed"):
            raise conflict("wrong_status", f"the booking is {b['status']}")
        now = self._now()
        ref = db.get(*store.payref_key(b["booking_id"]))
        seq = int(ref["seq"]) + 1 if ref else 1
        payment_id = f"{b['booking_id']}-{seq}"
        old = self._end_old(ref) if b["status"] == "held" else None
        p = self._new_payment(b, payment_id, req.method, req.amount.amount, req.amount.currency, 0, now,
                              received_by={"user_id": caller.user_id, "name": req.received_by or ""})
        p.update(status="succeeded", paid_at=_iso(now), **store.index_keys(p, _iso(now)),
                 local_day=now.astimezone(zone(b["time_zone"])).date().isoformat())
        tx = db.Tx().put_new("new_payment", store.payment_item(p))
        store.put_payref(tx, b["booking_id"], {**self._ref(p, seq), "status": "succeeded"},
                         int(ref["seq"]) if ref else 0)
        if old is not None:
            self._cancel_ops(tx, old, now)
        if b["status"] == "held":
            self.booking.confirm_paid_ops(tx, b, now, payment_id)
        tx.event("payment.succeeded", self._succeeded_data(p))
        tx.commit_or(conflict("payment_changed", "the booking or its payment changed meanwhile; retry"))
        log.event("payment.reception", payment_id=payment_id, method=req.method)
        return self.view(p)

    # ------------------------------------------------------------------ the provider's webhooks

    def handle_event(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("type")
        obj = (event.get("data") or {}).get("object") or {}
        eid = str(event.get("id") or "")
        meta = obj.get("metadata") or {}
        if kind in ("payment_intent.succeeded", "checkout.session.completed"):
            if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
                return {"handled": False}
            return self._succeeded(eid, kind, meta.get("payment_id"), obj.get("id") if kind.startswith("payment_")
                                   else obj.get("payment_intent"))
        if kind == "payment_intent.payment_failed":
            return self._failed(eid, kind, meta.get("payment_id"))
        if kind in ("payment_intent.canceled", "checkout.session.expired"):
            return self._ended(eid, kind, meta.get("payment_id"))
        if kind in ("refund.created", "refund.updated", "refund.failed"):
            return self._refund_update(eid, kind, obj, None)
        if kind == "charge.refunded":
            listed = obj.get("refunds") if isinstance(obj.get("refunds"), dict) else None
            refunds = listed.get("data") if listed is not None and not listed.get("has_more") else None
            if refunds is None:  # API versions since 2022-11-15 leave the list out of the charge: ask for it
                refunds = self.gw.charge_refunds(obj["id"]) if isinstance(obj.get("id"), str) else []
            out = {"handled": False}
            for r in refunds or []:
                if self._refund_update(eid + ":" + str(r.get("id")), kind, r, meta.get("payment_id"))["handled"]:
                    out = {"handled": True}
            return out
        return {"handled": False}

    @classmethod
    def _load(cls, payment_id: Any) -> Optional[dict[str, Any]]:
        return store.get_payment(payment_id) if cls._load_id(payment_id) else None

    def _succeeded(self, eid: str, kind: str, payment_id: Any, intent_id: Any) -> dict[str, Any]:
        not_current = False
        for _ in range(3):  # a concurrent change to the booking or the payment: read again and decide again
            p = self._load(payment_id)
            if p is None or p["status"] == "succeeded":
                return {"handled": False}
            now = self._now()
            b = booking_store.get_booking(p["booking_id"])
            at = _iso(now)
            changes: dict[str, Any] = {"status": "succeeded", "paid_at": at, **store.index_keys(p, at),
                                       "local_day": now.astimezone(zone(p["time_zone"])).date().isoformat()}
            if isinstance(intent_id, str):
                changes["intent_id"] = intent_id
            confirm = b is not None and b["status"] == "held" and not not_current
            if not confirm:  # no visit for this money (lapsed, cancelled, or paid by another payment)
                changes["refund_due"] = "no_visit"
                changes["refunded_total"] = int(p["amount"])
            tx = db.Tx()
            store.mark_event(tx, eid, kind, int(now.timestamp()))
            store.update_payment(tx, p, changes, ("pending", "failed", "cancelled"))
            paid = {**p, **changes, "version": p["version"] + 1}
            if confirm:
                self._payref_op(tx, p["booking_id"], p["payment_id"], "succeeded")
                self.booking.confirm_paid_ops(tx, b, now, p["payment_id"])
            tx.event("payment.succeeded", self._succeeded_data(paid))
            if not confirm:
                self._refund_ops(tx, paid, int(p["amount"]), "no_visit", new_id(), now, by="system", reserve=False)
            try:
                tx.commit()
            except db.TxCancelled as exc:
                if exc.any("provider_event"):
                    return {"handled": False}  # this very event was applied already
                if exc.condition_failed("payref"):
                    not_current = True  # another payment is the booking's current one: this money goes back
                continue
            log.event("payment.succeeded", payment_id=p["payment_id"], confirmed=confirm)
            return {"handled": True, "confirmed": confirm}
        raise conflict("busy", "the payment changed meanwhile; Stripe will deliver it again")

    @staticmethod
    def _payref_op(tx: db.Tx, bid: str, payment_id: str, status: str) -> None:
        """Keep the booking's pointer in step, only while it points at this payment."""
        pk, sk = store.payref_key(bid)
        tx.update("payref", pk, sk, "SET #st = :s", condition="payment_id = :pid", names={"#st": "status"},
                  expr_values=db.values(s=status, pid=payment_id))

    @staticmethod
    def _succeeded_data(p: dict[str, Any]) -> dict[str, Any]:
        return {k: p.get(k) for k in ("payment_id", "booking_id", "patient_id", "clinic_id", "doctor_id", "amount",
                                      "currency", "method", "cashback_spent")}

    def _failed(self, eid: str, kind: str, payment_id: Any) -> dict[str, Any]:
        p = self._load(payment_id)
        if p is None or p["status"] != "pending":
            return {"handled": False}  # stale: a later event decided already
        now = self._now()
        tx = db.Tx()
        store.mark_event(tx, eid, kind, int(now.timestamp()))
        store.update_payment(tx, p, {"status": "failed", "failed_at": _iso(now)}, ("pending",))
        tx.event("payment.failed", {"payment_id": p["payment_id"], "booking_id": p["booking_id"],
                                    "patient_id": p["patient_id"], "clinic_id": p["clinic_id"]})
        try:
            tx.commit()
        except db.TxCancelled:
            return {"handled": False}
        return {"handled": True}

    def _ended(self, eid: str, kind: str, payment_id: Any) -> dict[str, Any]:
        p = self._load(payment_id)
        if p is None or p["status"] not in ("pending", "failed"):
            return {"handled": False}
        now = self._now()
        tx = db.Tx()
        store.mark_event(tx, eid, kind, int(now.timestamp()))
        self._cancel_ops(tx, p, now, name="payment")
        try:
            tx.commit()
        except db.TxCancelled:
            return {"handled": False}
        return {"handled": True}

    # ------------------------------------------------------------------ refunds

    def _refund_ops(self, tx: db.Tx, p: dict[str, Any], amount: int, reason: str, refund_id: str, now: datetime,
                    by: str, name: str = "payment", reserve: bool = True, owed: bool = False) -> dict[str, Any]:
        """Reserve a refund on the payment (version-checked) and write it with its event. ``reserve=False``:
        the caller's own change to the payment in this transaction reserves it already. ``owed``: a desk
        payment's refund nobody has handed back yet (``owed_at_reception``)."""
        total = int(p.get("refunded_total") or 0) + (amount if reserve else 0)
        if amount < 1 or total > int(p["amount"]):
            raise field_invalid("amount", "exceeds_paid",
                                f"at most {int(p['amount']) - int(p.get('refunded_total') or 0)} can still be refunded")
        if reserve:
            store.update_payment(tx, p, {"refunded_total": total}, ("succeeded",), name=name)
        desk = p.get("provider") == "desk"
        owed = owed and desk
        r = self._refund_record(p, refund_id, amount, reason, by, OWED if owed else "succeeded" if desk
                                else "pending", now)
        tx.put_new(f"refund:{refund_id}", store.refund_item(p, r))
        if owed:  # the wallet takes back what the payment earned now; the patient is told when it is handed back
            tx.event("payment.refund_owed", self._refunded_data(p, r, total))
        elif desk:
            tx.event("payment.refunded", self._refunded_data(p, r, total))
        else:
            tx.event("payment.refund_requested", {"payment_id": p["payment_id"], "refund_id": refund_id})
        return r

    @staticmethod
    def _refund_record(p: dict[str, Any], refund_id: str, amount: int, reason: str, by: str, status: str,
                       now: datetime, **extra: Any) -> dict[str, Any]:
        return {"refund_id": refund_id, "payment_id": p["payment_id"], "booking_id": p["booking_id"],
                "clinic_id": p["clinic_id"], "patient_id": p["patient_id"], "doctor_id": p.get("doctor_id"),
                "method": p["method"], "amount": amount, "currency": p["currency"], "reason": reason, "by": by,
                "status": status, "created_at": _iso(now),
                "local_day": now.astimezone(zone(p["time_zone"])).date().isoformat(), **extra}

    @staticmethod
    def _refunded_data(p: dict[str, Any], r: dict[str, Any], total: int) -> dict[str, Any]:
        return {"payment_id": p["payment_id"], "refund_id": r["refund_id"], "booking_id": p["booking_id"],
                "patient_id": p["patient_id"], "clinic_id": p["clinic_id"], "amount": r["amount"],
                "refunded_total": total, "paid_amount": p["amount"], "currency": p["currency"], "reason": r["reason"],
                "at_reception": p.get("provider") == "desk"}  # handed back at the desk, not through a bank

    def refund(self, caller: Any, cid: str, payment_id: str, req: Any,
               key: Optional[str]) -> tuple[dict[str, Any], bool]:
        """A partial (or whole) refund by the clinic's staff, with a reason; an Idempotency-Key replays it."""
        access.require_clinic_admin(caller, cid)
        p = self._load(payment_id)
        if p is None or p["clinic_id"] != cid:
            raise not_found()
        if p["status"] != "succeeded":
            raise conflict("wrong_status", f"the payment is {p['status']}; only a paid one is refunded")
        refund_id = "R" + hashlib.sha256(f"{caller.user_id}:{payment_id}:{key}".encode()).hexdigest()[:25].upper() \
            if key else new_id()
        if key:
            seen = store.get_refund(payment_id, refund_id)
            if seen:
                if seen["amount"] != req.amount or seen["reason"] != req.reason:
                    raise AppError(code="idempotency_key_reused", status=422,
                                   detail="this Idempotency-Key was used for another refund")
                return self._refund_view(seen), False
        now = self._now()
        tx = db.Tx()
        r = self._refund_ops(tx, p, req.amount, req.reason, refund_id, now, by=caller.user_id)
        tx.commit_or(conflict("payment_changed", "another refund of this payment came first; check and retry"))
        log.event("payment.refund_requested", payment_id=payment_id, refund_id=refund_id)
        return self._refund_view(r), True

    def submit_refund(self, data: dict[str, Any]) -> None:
        """Ask the provider for a reserved refund (outbox handler; the refund id is the idempotency key)."""
        p = store.get_payment(data["payment_id"])
        r = store.get_refund(data["payment_id"], data["refund_id"]) if p else None
        if not p or not r or r["status"] != "pending":
            return
        result = self.gw.refund(intent_id=p["intent_id"], amount=int(r["amount"]),
                                metadata={"payment_id": p["payment_id"], "refund_id": r["refund_id"]},
                                idempotency_key=f"refund-{r['refund_id']}")
        self._settle_refund(p, r, result.status, result.refund_id, None)

    def _settle_refund(self, p: dict[str, Any], r: dict[str, Any], status: str, provider_id: Optional[str],
                       eid: Optional[str], kind: str = "") -> bool:
        now = self._now()
        tx = db.Tx()
        if eid:
            store.mark_event(tx, eid, kind, int(now.timestamp()))
        changes = {"provider_refund_id": provider_id} if provider_id else {}
        if status == "pending" and not changes:
            return False
        if status in ("succeeded", "failed"):
            changes["status"] = status
            changes["settled_at"] = _iso(now)
        names = {f"#c{i}": k for i, k in enumerate(changes)} | {"#st": "status"}
        tx.update("refund", store.payment_pk(p["payment_id"]), db.key("REFUND", r["refund_id"]),
                  "SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))), condition="#st = :pending",
                  names=names, expr_values=db.values(pending="pending",
                                                     **{f"c{i}": v for i, v in enumerate(changes.values())}))
        if status == "succeeded":
            tx.event("payment.refunded", self._refunded_data(p, r, int(p.get("refunded_total") or 0)))
        elif status == "failed":  # the reservation goes back: the money is still with the clinic
            store.update_payment(tx, p, {"refunded_total": int(p["refunded_total"]) - int(r["amount"])},
                                 ("succeeded",))
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.any("payment"):
                raise conflict("busy", "the payment changed meanwhile; retried later") from None
            return False
        return True

    def _refund_update(self, eid: str, kind: str, obj: dict[str, Any], payment_hint: Any) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        if not isinstance(meta.get("refund_id"), str):
            return self._outside_refund(eid, kind, obj, payment_hint or meta.get("payment_id"))
        p = self._load(meta.get("payment_id"))
        r = store.get_refund(p["payment_id"], meta["refund_id"]) if p else None
        if not p or not r or r["status"] != "pending":
            return {"handled": False}
        status = REFUND_STATUS.get(str(obj.get("status")), "pending")
        return {"handled": self._settle_refund(p, r, status, obj.get("id"), eid, kind)}

    def _outside_refund(self, eid: str, kind: str, obj: dict[str, Any], payment_id: Any) -> dict[str, Any]:
        """A refund someone made at the provider (its dashboard), not through us: record it once, whichever
        of its events comes first and however often; a later event only moves it forward."""
        provider_id = obj.get("id")
        if not isinstance(provider_id, str) or not provider_id:
            return {"handled": False}
        if self._load_id(payment_id) is None and isinstance(obj.get("payment_intent"), str):
            payment_id = self.gw.intent_payment_id(obj["payment_intent"])  # a refund carries no metadata of ours
        if self._load_id(payment_id) is None:
            return {"handled": False}
        status = REFUND_STATUS.get(str(obj.get("status")), "pending")
        refund_id = outside_refund_id(provider_id)
        for _ in range(3):
            p, refunds = store.payment_and_refunds(payment_id)
            if p is None:
                return {"handled": False}
            mine = next((r for r in refunds if r["refund_id"] == refund_id
                         or r.get("provider_refund_id") == provider_id), None)
            if mine is not None:  # recorded already (or it is one of ours after all): only forward from pending
                if mine["status"] != "pending":
                    return {"handled": False}
                return {"handled": self._settle_refund(p, mine, status, provider_id, eid, kind)}
            if status == "failed":
                return {"handled": False}  # no money moved
            if p["status"] != "succeeded":
                raise conflict("busy", "the payment's own event has not arrived yet; Stripe will deliver again")
            amount = int(obj.get("amount") or 0)
            if amount < 1:
                return {"handled": False}
            now = self._now()
            tx = db.Tx()
            store.mark_event(tx, eid, kind, int(now.timestamp()))
            total = int(p.get("refunded_total") or 0) + amount
            # Stripe refunded this much already, so our reservations that have not reached it yet cannot all
            # go through: the newest give way (Stripe would refuse them for the amount)
            waiting = sorted((r for r in refunds if r["status"] == "pending" and not r.get("provider_refund_id")),
                             key=lambda r: r["created_at"], reverse=True)
            for r in waiting:
                if total <= int(p["amount"]):
                    break
                tx.update(f"superseded:{r['refund_id']}", store.payment_pk(p["payment_id"]),
                          db.key("REFUND", r["refund_id"]), "SET #st = :failed, failure = :why, settled_at = :at",
                          condition="#st = :pending AND attribute_not_exists(provider_refund_id)",
                          names={"#st": "status"}, expr_values=db.values(
                              failed="failed", why="superseded_by_provider_refund", at=_iso(now), pending="pending"))
                total -= int(r["amount"])
            if total > int(p["amount"]):
                log.warning("payment.refunds_exceed_paid", payment_id=p["payment_id"])
                total = int(p["amount"])
            store.update_payment(tx, p, {"refunded_total": total}, ("succeeded",))
            r = self._refund_record(p, refund_id, amount, "refunded_at_provider", "provider",
                                    "succeeded" if status == "succeeded" else "pending", now,
                                    provider_refund_id=provider_id, origin="provider")
            if status == "succeeded":
                r["settled_at"] = _iso(now)
            tx.put_new("refund", store.refund_item(p, r))
            if status == "succeeded":
                tx.event("payment.refunded", self._refunded_data(p, r, total))
            try:
                tx.commit()
            except db.TxCancelled as exc:
                if exc.any("provider_event"):
                    return {"handled": False}
                continue  # recorded meanwhile, or the payment moved: read again
            log.event("payment.refund_recorded", payment_id=p["payment_id"], refund_id=refund_id, origin="provider")
            return {"handled": True}
        raise conflict("busy", "the payment changed meanwhile; Stripe will deliver it again")

    @staticmethod
    def _load_id(payment_id: Any) -> Optional[str]:
        """``payment_id`` if it has the form of one of ours (``<booking ULID>-<attempt>``), else None."""
        return payment_id if isinstance(payment_id, str) and "-" in payment_id \
            and is_ulid(payment_id.split("-")[0]) and payment_id.rsplit("-", 1)[1].isdigit() else None

    def refund_by_policy(self, event: dict[str, Any]) -> None:
        """``booking.cancelled`` / ``booking.no_show`` / ``booking.expired``: stop the payment nobody finished, and
        refund what the policy says across every payment the booking kept (outbox handler; idempotent: the
        policy names a total to give back, so a second run finds it given and writes nothing)."""
        data = event["data"]
        bid = data.get("booking_id")
        ref = db.get(*store.payref_key(bid)) if bid else None
        if not ref:
            return
        now = self._now()
        payments = store.booking_payments(bid, int(ref.get("seq") or 1))
        current = next((p for p in payments if p["payment_id"] == ref["payment_id"]), None)
        if current is not None and current["status"] in ("pending", "failed"):
            self._stop_open(current, bid, now)
        if event["kind"] == "booking.expired":
            return
        kept = [p for p in payments if p["status"] == "succeeded" and not p.get("refund_due")]
        if not kept:
            return
        percent, reason = self._policy_share(event, kept[0]["clinic_id"])
        plan = policy_plan(kept, percent)
        if not plan:
            return
        tx = db.Tx()
        for i, (p, amount) in enumerate(plan):
            refund_id = "P" + hashlib.sha256(f"policy:{event['event_id']}:{p['payment_id']}".encode()) \
                .hexdigest()[:25].upper()
            self._refund_ops(tx, p, amount, reason, refund_id, now, by="policy", name=f"payment:{i}", owed=True)
        try:
            tx.commit()
        except db.TxCancelled as exc:  # a staff refund (or this very handler) came first: decide again
            raise conflict("busy", "the payment changed meanwhile; retried") from exc
        log.event("payment.policy_refund", booking_id=bid, payments=len(plan), reason=reason)

    def _stop_open(self, p: dict[str, Any], bid: str, now: datetime) -> None:
        """End the booking's payment nobody finished (at the provider first, then here)."""
        ended = "cancelled"
        if p["status"] == "pending" and p.get("provider") == "stripe":
            ended = self.gw.expire_checkout(p["checkout_id"]) if p.get("checkout_id") \
                else self.gw.cancel_intent(p["intent_id"])
        if ended == "succeeded":
            return  # the money came first: its webhook refunds it as a late payment
        tx = db.Tx()
        self._cancel_ops(tx, p, now, name="payment")
        self._payref_op(tx, bid, p["payment_id"], "cancelled")
        try:
            tx.commit()
        except db.TxCancelled:
            return

    @staticmethod
    def _policy_share(event: dict[str, Any], clinic_id: str) -> tuple[int, str]:
        """The percent of what was paid that goes back, and why."""
        data = event["data"]
        if data.get("refund") == "full" or data.get("by") == "clinic":
            return 100, "clinic_cancelled"
        policies = (clinic_store.get_clinic(clinic_id) or {}).get("policies") or {}
        if event["kind"] == "booking.no_show":
            return int(policies.get("no_show_refund_percent", 0)), "no_show"
        if data.get("late"):
            return int(policies.get("late_cancel_refund_percent", 0)), "late_cancel"
        return 100, "cancelled_in_time"

    # ------------------------------------------------------------------ staff: a refund owed at the desk is handed back

    def pay_out_refund(self, caller: Any, cid: str, payment_id: str, refund_id: str, req: Any) -> dict[str, Any]:
        """Staff hand back a refund owed at the reception: it becomes succeeded, with who and when. Asking again
        answers the refund as it is (the first payout stands)."""
        access.require_clinic_admin(caller, cid)
        if self._load_id(payment_id) is None or not REFUND_ID.match(refund_id or ""):
            raise not_found()
        got = {i["SK"]: i for i in db.batch_get([(store.payment_pk(payment_id), "PAYMENT"),
                                                 (store.payment_pk(payment_id), db.key("REFUND", refund_id))])}
        p, r = got.get("PAYMENT"), got.get(db.key("REFUND", refund_id))
        if p is None or r is None or p["clinic_id"] != cid:
            raise not_found()
        if r.get("paid_out_at"):
            return self._refund_view(r)
        if r["status"] != OWED:
            raise conflict("refund_not_owed", f"this refund is {r['status']}; only a refund owed at the reception "
                                              "is paid out there")
        now = self._now()
        by = {"user_id": caller.user_id, "name": req.paid_out_by or ""}
        tx = db.Tx()
        tx.update("refund", store.payment_pk(payment_id), db.key("REFUND", refund_id),
                  "SET #st = :done, paid_out_at = :at, paid_out_by = :by, settled_at = :at",
                  condition="#st = :owed", names={"#st": "status"},
                  expr_values=db.values(done="succeeded", at=_iso(now), by=by, owed=OWED))
        done = {**r, "status": "succeeded", "paid_out_at": _iso(now), "paid_out_by": by, "settled_at": _iso(now)}
        tx.event("payment.refunded", self._refunded_data(p, done, int(p.get("refunded_total") or 0)))
        try:
            tx.commit()
        except db.TxCancelled:  # another member of staff paid it out at the same moment
            seen = store.get_refund(payment_id, refund_id) or r
            if seen.get("paid_out_at"):
                return self._refund_view(seen)
            raise conflict("payment_changed", "the refund changed meanwhile; look at it again") from None
        log.event("payment.refund_paid_out", payment_id=payment_id, refund_id=refund_id)
        return self._refund_view(done)

    # ------------------------------------------------------------------ reading

    def view(self, p: dict[str, Any]) -> dict[str, Any]:
        shown = ("payment_id", "booking_id", "patient_id", "clinic_id", "doctor_id", "clinic_name", "service_name",
                 "visit_start_utc", "time_zone", "method", "created_at", "paid_at", "version")
        out: dict[str, Any] = {k: p[k] for k in shown if p.get(k) is not None}
        out["kind"] = "payment"
        out["status"] = self.status_of(p)
        cur = p["currency"]
        out["amount"] = {"amount": int(p["amount"]), "currency": cur}
        out["cashback_spent"] = {"amount": int(p.get("cashback_spent") or 0), "currency": cur}
        out["refunded"] = {"amount": int(p.get("refunded_total") or 0), "currency": cur}
        if p.get("received_by"):
            out["received_by"] = p["received_by"]
        return out

    @staticmethod
    def status_of(p: dict[str, Any]) -> str:
        if p["status"] == "succeeded" and int(p.get("refunded_total") or 0):
            return "refunded" if int(p["refunded_total"]) >= int(p["amount"]) else "partially_refunded"
        return str(p["status"])

    @staticmethod
    def _refund_view(r: dict[str, Any]) -> dict[str, Any]:
        out = {k: r[k] for k in ("refund_id", "payment_id", "booking_id", "clinic_id", "patient_id", "method",
                                 "reason", "status", "created_at", "settled_at", "paid_out_at", "paid_out_by")
               if r.get(k) is not None}
        out["kind"] = "refund"
        out["origin"] = r.get("origin") or ("policy" if r.get("by") in ("policy", "system") else "clinic")
        out["amount"] = {"amount": int(r["amount"]), "currency": r["currency"]}
        return out

    def _row(self, item: dict[str, Any]) -> dict[str, Any]:
        return self._refund_view(item) if item.get("type") == "refund" else self.view(item)

    def get(self, caller: Any, payment_id: str) -> dict[str, Any]:
        p = self._load(payment_id)
        if p is None:
            raise not_found()
        access.relation(caller, p)
        out = self.view(p)
        out["refunds"] = [self._refund_view(r) for r in store.get_refunds(payment_id)]
        return out

    def history(self, caller: Any, q: Any) -> dict[str, Any]:
        access.require_patient(caller)
        items, cursor = store.history_page(caller.user_id, q.limit, q.cursor)
        return {"items": [self._row(i) for i in items], "next_cursor": cursor}

    def _range(self, cid: str, d_from: date, d_to: date) -> tuple[str, str, str]:
        """The UTC key range holding the clinic's local days (its first branch's zone; any zone on Earth fits
        the widened range, and the stored local day filters exactly)."""
        lo = datetime(d_from.year, d_from.month, d_from.day) - timedelta(hours=14)
        hi = datetime(d_to.year, d_to.month, d_to.day) + timedelta(days=1, hours=12)
        return lo.strftime("%Y-%m-%dT%H:%M:%SZ"), hi.strftime("%Y-%m-%dT%H:%M:%SZ"), ""

    def _filters(self, q: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
        parts = ["local_day BETWEEN :dfrom AND :dto"]
        vals: dict[str, Any] = {"dfrom": q.date_from.isoformat(), "dto": q.date_to.isoformat()}
        names: dict[str, str] = {}
        if getattr(q, "method", None):
            parts.append("#m = :method")
            names["#m"] = "method"
            vals["method"] = q.method
        if getattr(q, "doctor_id", None):
            parts.append("doctor_id = :doctor")
            vals["doctor"] = q.doctor_id
        status = getattr(q, "status", None)
        if status in ("refund", "refund_owed"):
            parts.append("#t = :refund")
            names["#t"] = "type"
            vals["refund"] = "refund"
            if status == "refund_owed":
                parts.append("#st = :owed")
                names["#st"] = "status"
                vals["owed"] = OWED
        elif status:
            names["#t"] = "type"
            vals["pay"] = "payment"
            parts.append("#t = :pay")
            if status == "succeeded":
                parts.append("refunded_total = :zero")
                vals["zero"] = 0
            elif status == "refunded":
                parts.append("refunded_total >= amount")
            else:
                parts.append("refunded_total > :zero AND refunded_total < amount")
                vals["zero"] = 0
        return " AND ".join(parts), vals, names

    def transactions(self, caller: Any, cid: str, q: Any) -> dict[str, Any]:
        access.require_clinic_admin(caller, cid)
        lo, hi, _ = self._range(cid, q.date_from, q.date_to)
        expr, vals, names = self._filters(q)
        items, cursor = store.transactions_page(cid, lo, hi, q.limit, q.cursor, expr, vals, names or None)
        return {"items": [self._row(i) for i in items], "next_cursor": cursor}

    def _all(self, cid: str, q: Any, cap: int = 20000) -> list[dict[str, Any]]:
        lo, hi, _ = self._range(cid, q.date_from, q.date_to)
        expr, vals, names = self._filters(q)
        try:
            return store.transactions_all(cid, lo, hi, expr, vals, names or None, cap)
        except db.ReadCapExceeded:
            raise field_invalid("date_to", "range_too_large", f"more than {cap} transactions; choose fewer days") \
                from None

    def daily_totals(self, caller: Any, cid: str, q: Any) -> dict[str, Any]:
        access.require_clinic_admin(caller, cid)
        days: dict[tuple[str, str], dict[str, Any]] = {}
        for i in self._all(cid, q):
            row = days.setdefault((i["local_day"], i["currency"]), {
                "date": i["local_day"], "currency": i["currency"], "payments": 0, "paid": 0, "refunded": 0,
                "owed": 0, "by_method": {}})
            if i.get("type") == "refund":
                if i.get("status") == OWED:  # still in the drawer: owed, not yet refunded
                    row["owed"] += int(i["amount"])
                elif i.get("status") != "failed":
                    row["refunded"] += int(i["amount"])
                continue
            row["payments"] += 1
            row["paid"] += int(i["amount"])
            row["by_method"][i["method"]] = row["by_method"].get(i["method"], 0) + int(i["amount"])
        out = []
        for (_, cur), row in sorted(days.items()):
            out.append({"date": row["date"], "payments": row["payments"],
                        "paid": {"amount": row["paid"], "currency": cur},
                        "refunded": {"amount": row["refunded"], "currency": cur},
                        "net": {"amount": row["paid"] - row["refunded"], "currency": cur},
                        "owed_at_reception": {"amount": row["owed"], "currency": cur},
                        "by_method": {k: {"amount": v, "currency": cur} for k, v in sorted(row["by_method"].items())}})
        return {"items": out}

    def export_csv(self, caller: Any, cid: str, q: Any, lang: str) -> str:
        """The transactions as CSV for a spreadsheet: UTF-8 with a BOM (Excel reads Russian text right),
        ``;`` as the separator (Russian Excel's list separator), every text field quoted."""
        access.require_clinic_admin(caller, cid)
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        for i in sorted(self._all(cid, q), key=lambda x: x["GSI4SK"]):
            when = _dt(i.get("paid_at") or i["created_at"])
            tz = i.get("time_zone")
            local = when.astimezone(zone(tz)) if tz else when
            is_refund = i.get("type") == "refund"
            service = ""
            if not is_refund:
                service = (i.get("service_name") or {}).get(lang) or (i.get("service_name") or {}).get("en", "")
            w.writerow([i["local_day"], local.strftime("%H:%M"), "refund" if is_refund else "payment",
                        i["payment_id"], i["booking_id"], i["method"],
                        i["status"] if is_refund else self.status_of(i), _decimal(int(i["amount"]), i["currency"]),
                        i["currency"], "" if is_refund else _decimal(int(i.get("cashback_spent") or 0), i["currency"]),
                        "" if is_refund else _decimal(int(i.get("refunded_total") or 0), i["currency"]),
                        i.get("doctor_id") or "", _safe(service), _safe(i.get("reason") or "")])
        return "\ufeff" + buf.getvalue()

    # ------------------------------------------------------------------ telling the patient

    def tell(self, event: dict[str, Any], kind: str) -> None:
        from chalicelib import bootstrap

        data = event["data"]
        if data.get("patient_id"):
            bootstrap.notify().send(data["patient_id"], kind, f"{event['event_id']}:{kind}", {},
                                    link=f"booking/{data['booking_id']}" if data.get("booking_id") else None)

    def refund_late_notice(self, event: dict[str, Any]) -> None:
        if event["data"].get("reason") == "no_visit":
            self.tell(event, "payment_refunded_no_visit")


REFUND_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def outside_refund_id(provider_refund_id: str) -> str:
    """Our id of a refund made at the provider: derived from its id there, so every event about it finds it."""
    return "X" + hashlib.sha256(f"provider:{provider_refund_id}".encode()).hexdigest()[:25].upper()


def policy_plan(payments: list[dict[str, Any]], percent: int) -> list[tuple[dict[str, Any], int]]:
    """What a policy refund takes from each of a booking's kept payments: ``percent`` of all they were paid
    (rounded half up, as ``Money.percent``) is what the patient gets back in all, less what already went back
    (so the clinic keeps exactly its share and a second run gives nothing). Online payments first (the money
    goes back to the card, nobody at the desk hands out cash), then desk payments; each group in the order
    the payments were made; never more than a payment has left to refund."""
    if not payments or percent <= 0:
        return []
    paid = sum(int(p["amount"]) for p in payments)
    already = sum(int(p.get("refunded_total") or 0) for p in payments)
    target = Money(paid, payments[0]["currency"]).percent(min(percent, 100) * 100).amount
    want = min(target, paid) - already
    plan: list[tuple[dict[str, Any], int]] = []
    for p in sorted(payments, key=lambda p: (p.get("provider") == "desk", _attempt(p["payment_id"]))):
        if want <= 0:
            break
        part = min(want, int(p["amount"]) - int(p.get("refunded_total") or 0))
        if part > 0:
            plan.append((p, part))
            want -= part
    return plan


def _decimal(amount: int, currency: str) -> str:
    from chalicelib.core.money import MINOR_UNITS

    exp = MINOR_UNITS.get(currency, 2)
    if exp == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exp)
    return f"{sign}{whole},{frac:0{exp}d}"  # the decimal comma a Russian spreadsheet expects


def _safe(text: str) -> str:
    """A cell a spreadsheet never runs as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _format_money(amount: int, currency: str) -> str:
    return f"{_decimal(amount, currency)} {currency}"


__all__ = ["PaymentsService", "forbidden", "local_to_utc", "time"]
