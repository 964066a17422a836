"""The money half of the local Stripe server: Customers, PaymentIntents (destination charges), Refunds,
Checkout Sessions, ephemeral keys and the signed events they cause, with state kept.

``FakeStripe`` (``local/stripe_fake.py``) routes every ``/v1/...`` path it does not serve itself here.
Every object starts from Stripe's published sample (``local/stripe_fixtures.json``) with ids, times and
the fields the request set changed, so its shape is Stripe's. What it keeps, like Stripe does:
- ``Idempotency-Key``: the same key with the same parameters answers the first response again; the
  same key with other parameters is Stripe's ``idempotency_error``.
- a PaymentIntent moves ``requires_payment_method -> succeeded | canceled`` (a failed confirmation goes
  back to ``requires_payment_method`` with ``last_payment_error``); cancelling a succeeded one is refused.
- refunds never exceed what the charge captured (``amount_too_large``), keep ``reverse_transfer`` and
  ``refund_application_fee``, and move the charge's ``amount_refunded``.
- each change appends a signed event (``events``), delivered to ``webhook_url`` when one is set.
- ``dashboard_refund``: a refund made in Stripe's dashboard (``POST /_local/dashboard/refunds``): no metadata
  of ours, ``succeeded`` or ``pending`` (then ``settle_refund``, ``POST /_local/refunds/<id>/settle``, moves it
  on, and a failed one gives its amount back to the charge), the same events as any refund.
- ``charge_refunds_in_events = False`` sends ``charge.refunded`` as API versions since 2022-11-15 do: the
  charge without its ``refunds`` list (``GET /v1/refunds?charge=`` lists them).

Why not localstripe 1.15 (read in its source, ``resources.py``): its PaymentIntent and Refund constructors
answer 400 ``Unexpected`` for ``transfer_data``, ``application_fee_amount``, ``reverse_transfer`` and
``refund_application_fee``; it ignores ``Idempotency-Key``; it never emits ``charge.refunded``,
``refund.updated`` or ``checkout.session.completed``; and it sends webhooks after a fixed one-second
``asyncio.sleep`` on its own loop, so a test cannot decide when or how often an event arrives. A proxy in
front of it would have had to rewrite every request and invent every event this file sends anyway.
"""
from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from typing import Any, Callable, Optional

# Test cards as PaymentMethod ids (https://docs.stripe.com/testing): the first succeeds, the others decline.
CARDS = {"pm_card_visa": None, "pm_card_chargeDeclined": "card_declined",
         "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds"}


def nested(form: dict[str, str]) -> dict[str, Any]:
    """``a[b][c]=v`` form fields as nested dicts (how the Stripe SDK encodes parameters)."""
    out: dict[str, Any] = {}
    for raw_key, value in form.items():
        parts = raw_key.replace("]", "").split("[")
        at = out
        for p in parts[:-1]:
            at = at.setdefault(p, {})
        at[parts[-1]] = value
    return out


def _lists(value: Any) -> Any:
    """``{"0": x, "1": y}`` (the SDK's encoding of a list) as ``[x, y]``."""
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return [_lists(value[k]) for k in sorted(value, key=int)]
        return {k: _lists(v) for k, v in value.items()}
    return value


class StripePayments:
    def __init__(self, fixtures: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> None:
        self.fx = fixtures
        self._send = send
        self.customers: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._idem: dict[str, tuple[str, int, dict[str, Any]]] = {}  # key -> (params digest, status, body)
        self._lock = threading.RLock()
        self.charge_refunds_in_events = True

    # ------------------------------------------------------------------ plumbing
    def _obj(self, kind: str, prefix: str, **fields: Any) -> dict[str, Any]:
        obj = copy.deepcopy(self.fx[kind])
        obj.update(id=f"{prefix}_{secrets.token_hex(12)}", created=int(time.time()), livemode=False, **fields)
        return obj

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        evt = copy.deepcopy(self.fx.get("event", {}))
        body = copy.deepcopy(obj)
        if body.get("object") == "charge" and not self.charge_refunds_in_events:
            body.pop("refunds", None)
        evt.update(id="evt_" + secrets.token_hex(12), object="event", type=kind, created=int(time.time()),
                   data={"object": body}, livemode=False, pending_webhooks=1, api_version="2024-06-20")
        self.events.append(evt)
        self._send(evt)
        return evt

    @staticmethod
    def _err(status: int, code: str, message: str, kind: str = "invalid_request_error",
             **extra: Any) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"type": kind, "code": code, "message": message, **extra}}

    def handle(self, method: str, path: str, form: dict[str, str], idem_key: Optional[str],
               base: str) -> Optional[tuple[int, dict[str, Any]]]:
        """Serve one request, or None when the path is not one of ours."""
        params = _lists(nested(form))
        with self._lock:
            if method == "POST" and idem_key:
                digest = json.dumps([path, params], sort_keys=True)
                seen = self._idem.get(idem_key)
                if seen:
                    if seen[0] != digest:
                        return 400, {"error": {"type": "idempotency_error", "message": (
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            "first used with.")}}
                    return seen[1], copy.deepcopy(seen[2])
            answer = self._route(method, path.strip("/").split("/"), params, base)
            if answer is not None and method == "POST" and idem_key and answer[0] < 500:
                self._idem[idem_key] = (json.dumps([path, params], sort_keys=True), answer[0], copy.deepcopy(answer[1]))
            return answer

    def _route(self, method: str, parts: list[str], p: dict[str, Any], base: str) -> Optional[tuple[int, dict]]:
        if parts[0] != "v1" or len(parts) < 2:
            return None
        res, rest = parts[1], parts[2:]
        if res == "customers" and method == "POST" and not rest:
            cus = self._obj("customer", "cus", email=p.get("email"), metadata=p.get("metadata", {}),
                            name=p.get("name"), balance=0, currency=None)
            self.customers[cus["id"]] = cus
            return 200, cus
        if res == "ephemeral_keys" and method == "POST":
            if p.get("customer") not in self.customers:
                return self._err(400, "resource_missing", "No such customer", param="customer")
            key = self._obj("ephemeral_key", "ephkey", expires=int(time.time()) + 3600,
                            secret="ek_test_" + secrets.token_hex(16),
                            associated_objects=[{"id": p["customer"], "type": "customer"}])
            return 200, key
        if res == "payment_intents":
            return self._intents(method, rest, p)
        if res == "refunds" and method == "POST" and not rest:
            return self._refund(p)
        if res == "refunds" and method == "GET" and len(rest) == 1 and rest[0] in self.refunds:
            return 200, self.refunds[rest[0]]
        if res == "refunds" and method == "GET" and not rest:
            return 200, self._list_refunds(p)
        if res == "checkout" and rest[:1] == ["sessions"]:
            return self._sessions(method, rest[1:], p, base)
        return None

    # ------------------------------------------------------------------ PaymentIntents
    def _intents(self, method: str, rest: list[str], p: dict[str, Any]) -> Optional[tuple[int, dict]]:
        if method == "POST" and not rest:
            try:
                amount = int(p.get("amount", ""))
            except ValueError:
                return self._err(400, "parameter_invalid_integer", "Invalid integer", param="amount")
            if amount < 1:
                return self._err(400, "amount_too_small", "Amount must be at least 1", param="amount")
            if p.get("customer") and p["customer"] not in self.customers:
                return self._err(400, "resource_missing", "No such customer", param="customer")
            dest = (p.get("transfer_data") or {}).get("destination")
            fee = p.get("application_fee_amount")
            pi = self._obj("payment_intent", "pi", amount=amount, currency=p.get("currency", "eur"),
                           customer=p.get("customer"), metadata=p.get("metadata", {}), status="requires_payment_method",
                           transfer_data={"destination": dest} if dest else None,
                           application_fee_amount=int(fee) if fee else None, canceled_at=None,
                           cancellation_reason=None, last_payment_error=None, latest_charge=None, next_action=None,
                           amount_received=0, description=p.get("description"), processing=None)
            pi["client_secret"] = f"{pi['id']}_secret_{secrets.token_hex(12)}"
            self.intents[pi["id"]] = pi
            return 200, pi
        if not rest or rest[0] not in self.intents:
            return self._err(404, "resource_missing", "No such payment_intent", param="intent")
        pi = self.intents[rest[0]]
        if method == "GET" and len(rest) == 1:
            return 200, pi
        if method == "POST" and rest[1:] == ["cancel"]:
            if pi["status"] in ("succeeded", "canceled"):
                return self._err(400, "payment_intent_unexpected_state",
                                 f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}.",
                                 payment_intent=pi)
            pi.update(status="canceled", canceled_at=int(time.time()),
                      cancellation_reason=p.get("cancellation_reason", "requested_by_customer"))
            self.event("payment_intent.canceled", pi)
            return 200, pi
        if method == "POST" and rest[1:] == ["confirm"]:
            return self.confirm(pi["id"], p.get("payment_method", "pm_card_visa"))
        return None

    def confirm(self, pi_id: str, payment_method: str = "pm_card_visa") -> tuple[int, dict[str, Any]]:
        """The customer pays (PaymentSheet, or the Checkout page): succeeded, or a decline event."""
        with self._lock:
            pi = self.intents[pi_id]
            if pi["status"] != "requires_payment_method":
                return self._err(400, "payment_intent_unexpected_state",
                                 f"This PaymentIntent's status is {pi['status']}.", payment_intent=pi)
            decline = CARDS.get(payment_method, None) if payment_method in CARDS else "card_declined"
            if decline:
                pi["last_payment_error"] = {"type": "card_error", "code": "card_declined", "decline_code": decline,
                                            "message": "Your card was declined."}
                self.event("payment_intent.payment_failed", pi)
                return self._err(402, "card_declined", "Your card was declined.", kind="card_error",
                                 decline_code=decline, payment_intent=pi)
            charge = self._obj("charge", "ch", amount=pi["amount"], amount_captured=pi["amount"], amount_refunded=0,
                               captured=True, paid=True, refunded=False, status="succeeded", currency=pi["currency"],
                               payment_intent=pi["id"], metadata=dict(pi["metadata"]), customer=pi["customer"],
                               transfer_data=pi["transfer_data"], application_fee_amount=pi["application_fee_amount"],
                               refunds={"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"})
            self.charges[charge["id"]] = charge
            pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"],
                      last_payment_error=None, payment_method=payment_method)
            self.event("charge.succeeded", charge)
            self.event("payment_intent.succeeded", pi)
            return 200, pi

    # ------------------------------------------------------------------ Refunds
    def _refund(self, p: dict[str, Any], status: str = "succeeded") -> tuple[int, dict[str, Any]]:
        pi = self.intents.get(p.get("payment_intent", ""))
        if pi is None:
            return self._err(400, "resource_missing", "No such payment_intent", param="payment_intent")
        if pi["status"] != "succeeded":
            return self._err(400, "charge_not_refundable", "This PaymentIntent has no successful charge.")
        charge = self.charges[pi["latest_charge"]]
        left = charge["amount_captured"] - charge["amount_refunded"]
        amount = int(p.get("amount", left))
        if amount < 1 or amount > left:
            return self._err(400, "amount_too_large", f"Refund amount ({amount}) is greater than unrefunded "
                             f"amount on charge ({left})", param="amount")
        re = self._obj("refund", "re", amount=amount, currency=charge["currency"], charge=charge["id"],
                       payment_intent=pi["id"], metadata=p.get("metadata", {}), status=status,
                       reason=p.get("reason"))
        # kept as Stripe records them on the transfer reversal and the fee refund of a destination charge
        re["reverse_transfer"] = p.get("reverse_transfer") == "true"
        re["refund_application_fee"] = p.get("refund_application_fee") == "true"
        self.refunds[re["id"]] = re
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        charge["refunds"]["data"].append(copy.deepcopy(re))
        self.event("charge.refunded", charge)
        self.event("refund.updated", re)
        return 200, re

    def _list_refunds(self, p: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/refunds`` (``charge``, ``payment_intent``, ``limit``, ``starting_after``), newest first."""
        found = [r for r in self.refunds.values()
                 if (not p.get("charge") or r["charge"] == p["charge"])
                 and (not p.get("payment_intent") or r["payment_intent"] == p["payment_intent"])]
        found.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        if p.get("starting_after"):
            ids = [r["id"] for r in found]
            found = found[ids.index(p["starting_after"]) + 1:] if p["starting_after"] in ids else []
        limit = max(1, min(100, int(p.get("limit") or 10)))
        return {"object": "list", "url": "/v1/refunds", "has_more": len(found) > limit, "data": found[:limit]}

    def dashboard_refund(self, payment_intent: str, amount: Optional[int] = None, status: str = "succeeded",
                         reason: Optional[str] = "requested_by_customer") -> tuple[int, dict[str, Any]]:
        """A refund someone makes in Stripe's dashboard: none of our metadata, maybe not settled yet."""
        with self._lock:
            params: dict[str, Any] = {"payment_intent": payment_intent, "reason": reason}
            if amount is not None:
                params["amount"] = str(amount)
            return self._refund(params, status=status)

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> tuple[int, dict[str, Any]]:
        """A pending refund succeeds or fails at the bank; a failed one's amount is the charge's again."""
        with self._lock:
            re = self.refunds.get(refund_id)
            if re is None:
                return self._err(404, "resource_missing", "No such refund")
            if re["status"] != "pending" or status not in ("succeeded", "failed", "canceled"):
                return self._err(400, "refund_unexpected_state", f"This refund is {re['status']}.")
            re["status"] = status
            charge = self.charges[re["charge"]]
            if status != "succeeded":
                re["failure_reason"] = "declined" if status == "failed" else None
                charge["amount_refunded"] -= re["amount"]
                charge["refunded"] = False
            for listed in charge["refunds"]["data"]:
                if listed["id"] == refund_id:
                    listed.update(re)
            self.event("refund.updated", re)
            if status == "failed":
                self.event("refund.failed", re)
            return 200, re

    # ------------------------------------------------------------------ Checkout Sessions
    def _sessions(self, method: str, rest: list[str], p: dict[str, Any], base: str) -> Optional[tuple[int, dict]]:
        if method == "POST" and not rest:
            items = p.get("line_items") or []
            amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
            pid = p.get("payment_intent_data") or {}
            s = self._obj("checkout.session", "cs_test", mode=p.get("mode", "payment"), status="open",
                          payment_status="unpaid", amount_total=amount, amount_subtotal=amount,
                          currency=(items[0]["price_data"]["currency"] if items else "eur"),
                          customer=p.get("customer"), metadata=p.get("metadata", {}),
                          expires_at=int(p.get("expires_at") or time.time() + 86400),
                          success_url=p.get("success_url"), cancel_url=p.get("cancel_url"), payment_intent=None)
            s["url"] = f"{base}/checkout/pay/{s['id']}"
            s["_intent_data"] = pid  # what the PaymentIntent is created with when the customer pays
            self.sessions[s["id"]] = s
            return 200, self._public(s)
        if not rest or rest[0] not in self.sessions:
            return self._err(404, "resource_missing", "No such checkout.session")
        s = self.sessions[rest[0]]
        if method == "GET" and len(rest) == 1:
            return 200, self._public(s)
        if method == "POST" and rest[1:] == ["expire"]:
            if s["status"] != "open":
                return self._err(400, "checkout_session_unexpected_state", f"This session is {s['status']}.")
            s["status"] = "expired"
            self.event("checkout.session.expired", self._public(s))
            return 200, self._public(s)
        return None

    @staticmethod
    def _public(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if not k.startswith("_")}

    def pay_session(self, session_id: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
        """The patient pays on the Checkout page: a PaymentIntent is made and confirmed, the session completes."""
        with self._lock:
            s = self.sessions[session_id]
            # expiry is Stripe's to decide by its clock; here a session ends when expired through the API
            if s["status"] != "open":
                raise ValueError(f"the session is {s['status']}")
            data = s["_intent_data"]
            fee = data.get("application_fee_amount")
            dest = (data.get("transfer_data") or {}).get("destination")
            pi = self._obj("payment_intent", "pi", amount=s["amount_total"], currency=s["currency"],
                           customer=s.get("customer"), metadata=data.get("metadata", {}),
                           status="requires_payment_method", transfer_data={"destination": dest} if dest else None,
                           application_fee_amount=int(fee) if fee else None, canceled_at=None,
                           cancellation_reason=None, last_payment_error=None, latest_charge=None, next_action=None)
            self.intents[pi["id"]] = pi
            status, _ = self.confirm(pi["id"], payment_method)
            if status == 200:
                s.update(status="complete", payment_status="paid", payment_intent=pi["id"])
                self.event("checkout.session.completed", self._public(s))
            return self._public(s)
