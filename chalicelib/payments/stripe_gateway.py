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


class StripeGateway:
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
