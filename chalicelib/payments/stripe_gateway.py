"""Stripe behind a small gateway. The SDK is imported on first use (~100 ms).

One adapter: the official SDK, pointed by settings either at Stripe or at a
local Stripe-compatible server (``make run`` and the tests start one).

What Stripe answers becomes a problem a client can act on (``_problem``): a declined
card, a request Stripe refuses, an account that cannot take money yet, a country Stripe
does not serve are 4xx with stable codes; only Stripe's own failures (5xx, timeouts,
connection errors) are a 503 with Retry-After. No exception class name or provider
message reaches a client; the log keeps Stripe's error code and request id only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from chalicelib.core import log
from chalicelib.core.errors import AppError, FieldError
from chalicelib.core.settings import get_settings

# How long a client should wait before retrying when Stripe is down.
RETRY_AFTER_S = 30

# Stripe error codes that mean "this connected account cannot do that yet".
_ACCOUNT_NOT_READY = {"account_invalid", "account_country_invalid_address", "charges_disabled",
                      "insufficient_capabilities_for_transfer", "payouts_not_allowed",
                      "transfers_not_allowed", "capability_not_enabled"}
_COUNTRY_UNSUPPORTED = {"country_unsupported", "platform_account_required"}


@dataclass(frozen=True)
class ConnectedAccount:
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


def _problem(exc: Exception, country: Optional[str] = None) -> AppError:
    """The problem a client sees for one Stripe error (``stripe.StripeError``)."""
    import stripe

    code = getattr(exc, "code", None) or ""
    status = getattr(exc, "http_status", None) or 0
    param = getattr(getattr(exc, "error", None), "param", None) or ""
    log.warning("stripe.error", stripe_code=code or None, stripe_status=status or None,
                stripe_request_id=getattr(exc, "request_id", None), error_type=type(exc).__name__)
    if isinstance(exc, stripe.CardError):
        return AppError(code="card_declined", status=402)
    if isinstance(exc, stripe.RateLimitError):
        return AppError(code="payment_provider_busy", status=429, headers={"Retry-After": "5"},
                        extra={"retry_after": 5})
    if isinstance(exc, stripe.IdempotencyError):
        return AppError(code="idempotency_conflict", status=409)
    if isinstance(exc, stripe.InvalidRequestError):
        if code in _COUNTRY_UNSUPPORTED or (param == "country" and country):
            return country_unsupported(country or "")
        if code in _ACCOUNT_NOT_READY:
            return AppError(code="payouts_not_ready", status=409)
        return AppError(code="payment_request_rejected", status=422)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        # Our keys are wrong or lack a permission: nothing the client can fix; to the client it is the provider
        # being unavailable (503, as for an outage), and the error log line alerts the operator.
        log.error("stripe.credentials_rejected", stripe_status=status or None)
    # APIConnectionError (timeouts included), APIError (Stripe's 5xx), our rejected keys and anything unknown.
    return AppError(code="payment_provider_unavailable", status=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)}, extra={"retry_after": RETRY_AFTER_S})


def country_unsupported(country: str) -> AppError:
    return AppError(code="payouts_country_unsupported", status=422,
                    detail=f"Payouts through Stripe are not available for clinics registered in {country}.",
                    errors=[FieldError("country", "payouts_country_unsupported",
                                       f"Stripe does not onboard businesses in {country}")])


# ------------------------------------------------------------------ payments (provider-neutral shapes)

# The API version the mobile SDK's ephemeral keys are made for (Stripe requires one on that call).
EPHEMERAL_KEY_API_VERSION = "2024-06-20"


@dataclass(frozen=True)
class Intent:
    """A payment at the provider: its id, what the client confirms it with, and where it stands."""
    intent_id: str
    client_secret: Optional[str]
    status: str  # pending | succeeded | cancelled | failed (the provider's words mapped to ours)


@dataclass(frozen=True)
class Checkout:
    session_id: str
    url: str
    expires_at: int


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # pending | succeeded | failed


_INTENT_STATUS = {"succeeded": "succeeded", "canceled": "cancelled", "processing": "pending",
                  "requires_payment_method": "pending", "requires_confirmation": "pending",
                  "requires_action": "pending", "requires_capture": "pending"}


def _d(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def intent_status(raw: str) -> str:
    return _INTENT_STATUS.get(raw, "pending")


class StripePayments:
    """The calls the payments feature makes, mixed into ``StripeGateway`` (the one Stripe client).

    Every call that creates something carries an idempotency key the caller derives from what it is
    about (a booking and an amount, a refund id), so a retry after a timeout gets the same object."""

    def _stripe(self) -> Any:  # StripeGateway's one SDK client
        raise NotImplementedError

    def _call(self, fn: Any, *args: Any, country: Optional[str] = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def publishable_key(self) -> str:
        from chalicelib.core import secrets

        return secrets.stripe_keys().publishable_key

    def ensure_customer(self, patient_id: str, idempotency_key: str) -> str:
        cus = self._call(self._stripe().v1.customers.create, params={"metadata": {"patient_id": patient_id}},
                         options={"idempotency_key": idempotency_key})
        return str(_d(cus)["id"])

    def create_intent(self, *, amount: int, currency: str, customer: str, destination: str, fee: int,
                      metadata: dict[str, str], idempotency_key: str) -> Intent:
        params: dict[str, Any] = {
            "amount": amount, "currency": currency.lower(), "customer": customer, "metadata": metadata,
            "automatic_payment_methods": {"enabled": True},
            "transfer_data": {"destination": destination}}
        if fee > 0:
            params["application_fee_amount"] = fee
        pi = _d(self._call(self._stripe().v1.payment_intents.create, params=params,
                           options={"idempotency_key": idempotency_key}))
        return Intent(pi["id"], pi.get("client_secret"), intent_status(pi["status"]))

    def get_intent(self, intent_id: str) -> Intent:
        pi = _d(self._call(self._stripe().v1.payment_intents.retrieve, intent_id))
        return Intent(pi["id"], pi.get("client_secret"), intent_status(pi["status"]))

    def cancel_intent(self, intent_id: str) -> str:
        """Cancel a payment nobody finished; the status it ends in (``succeeded`` if the money came first)."""
        import stripe

        try:
            pi = _d(self._stripe().v1.payment_intents.cancel(intent_id))
            return intent_status(pi["status"])
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "code", None) == "payment_intent_unexpected_state":
                return self.get_intent(intent_id).status
            raise _problem(exc) from exc
        except stripe.StripeError as exc:
            raise _problem(exc) from exc

    def customer_key(self, customer: str) -> str:
        """The ephemeral key PaymentSheet needs to act for this customer."""
        key = _d(self._call(self._stripe().v1.ephemeral_keys.create, params={"customer": customer},
                            options={"stripe_version": EPHEMERAL_KEY_API_VERSION}))
        return str(key["secret"])

    def create_checkout(self, *, amount: int, currency: str, name: str, destination: str, fee: int,
                        metadata: dict[str, str], expires_at: int, success_url: str,
                        idempotency_key: str) -> Checkout:
        intent_data: dict[str, Any] = {"metadata": metadata, "transfer_data": {"destination": destination}}
        if fee > 0:
            intent_data["application_fee_amount"] = fee
        s = _d(self._call(self._stripe().v1.checkout.sessions.create, params={
            "mode": "payment", "expires_at": expires_at, "success_url": success_url, "metadata": metadata,
            "line_items": [{"quantity": 1, "price_data": {"currency": currency.lower(), "unit_amount": amount,
                                                           "product_data": {"name": name}}}],
            "payment_intent_data": intent_data}, options={"idempotency_key": idempotency_key}))
        return Checkout(s["id"], s["url"], int(s["expires_at"]))

    def expire_checkout(self, session_id: str) -> str:
        import stripe

        try:
            s = _d(self._stripe().v1.checkout.sessions.expire(session_id))
        except stripe.InvalidRequestError as exc:
            if not getattr(exc, "code", None):
                raise _problem(exc) from exc
            s = _d(self._call(self._stripe().v1.checkout.sessions.retrieve, session_id))  # completed meanwhile
        except stripe.StripeError as exc:
            raise _problem(exc) from exc
        return "succeeded" if s.get("status") == "complete" else "cancelled"

    def refund(self, *, intent_id: str, amount: int, metadata: dict[str, str], idempotency_key: str) -> RefundResult:
        """Refund part or all of a destination charge, taking it back from the clinic and the platform fee."""
        re = _d(self._call(self._stripe().v1.refunds.create, params={
            "payment_intent": intent_id, "amount": amount, "metadata": metadata,
            "reverse_transfer": True, "refund_application_fee": True},
            options={"idempotency_key": idempotency_key}))
        status = {"succeeded": "succeeded", "failed": "failed",
                  "canceled": "failed"}.get(str(re.get("status")), "pending")
        return RefundResult(re["id"], status)


    def intent_payment_id(self, intent_id: str) -> Optional[str]:
        """Our payment id on a PaymentIntent (its metadata): how a refund made in Stripe's dashboard, which
        carries no metadata of ours, finds its payment."""
        pi = _d(self._call(self._stripe().v1.payment_intents.retrieve, intent_id))
        found = (pi.get("metadata") or {}).get("payment_id")
        return found if isinstance(found, str) else None

    def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]:
        """Every refund of a charge, paged to the end (a ``charge.refunded`` event of a newer API version
        leaves them out of the charge)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"charge": charge_id, "limit": 100}
        while True:
            page = _d(self._call(self._stripe().v1.refunds.list, params=params))
            data = [_d(r) for r in page.get("data") or []]
            out += data
            if not page.get("has_more") or not data:
                return out
            params = {**params, "starting_after": data[-1]["id"]}


class StripeGateway(StripePayments):
    def __init__(self) -> None:
        self._client: Any = None

    def _stripe(self) -> Any:
        if self._client is None:
            import logging

            import stripe

            from chalicelib.core import secrets

            # The SDK logs each error with Stripe's message at INFO; keep only our own line.
            logging.getLogger("stripe").setLevel(logging.WARNING)
            s = get_settings()
            kwargs: dict[str, Any] = {}
            if s.stripe_api_base:
                kwargs["base_addresses"] = {"api": s.stripe_api_base}
            self._client = stripe.StripeClient(
                secrets.stripe_keys().secret_key, max_network_retries=2,
                http_client=stripe.new_default_http_client(timeout=s.stripe_timeout_s), **kwargs)
        return self._client

    def _call(self, fn, *args, country: Optional[str] = None, **kwargs) -> Any:
        import stripe

        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _problem(exc, country) from exc

    def create_connected_account(self, clinic_id: str, country: str, email: Optional[str],
                                 idempotency_key: str) -> ConnectedAccount:
        params: dict[str, Any] = {
            "type": "express", "country": country, "metadata": {"clinic_id": clinic_id},
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        }
        if email:
            params["email"] = email
        acct = self._call(self._stripe().v1.accounts.create, params=params,
                          options={"idempotency_key": idempotency_key}, country=country)
        return self._account(acct)

    def onboarding_link(self, account_id: str, refresh_url: str, return_url: str) -> tuple[str, int]:
        link = self._call(self._stripe().v1.account_links.create, params={
            "account": account_id, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_onboarding"})
        return link.url, int(link.expires_at)

    @staticmethod
    def _account(acct: Any) -> ConnectedAccount:
        acct = acct.to_dict() if hasattr(acct, "to_dict") else dict(acct)
        return ConnectedAccount(account_id=acct["id"], charges_enabled=bool(acct.get("charges_enabled")),
                                payouts_enabled=bool(acct.get("payouts_enabled")),
                                details_submitted=bool(acct.get("details_submitted")))

    def parse_webhook(self, payload: bytes, signature: str) -> dict[str, Any]:
        """Verify Stripe's signature (HMAC-SHA256, 5-minute tolerance) and return the event."""
        import json

        import stripe

        from chalicelib.core import secrets

        secret = secrets.stripe_keys().webhook_secret
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, tolerance=300)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
            raise AppError(code="invalid_signature", status=400) from None
        try:
            event = json.loads(payload)
        except ValueError:
            raise AppError(code="malformed_json", status=400) from None
        if not isinstance(event, dict) or "type" not in event or "data" not in event:
            raise AppError(code="invalid_event", status=400)
        return event
