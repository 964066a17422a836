"""Stripe behind a small gateway. The SDK is imported on first use (~100 ms).

One adapter: the official SDK, pointed by settings either at Stripe or at a
local Stripe-compatible server (``make run`` and the tests start one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from chalicelib.core.errors import AppError
from chalicelib.core.settings import get_settings


@dataclass(frozen=True)
class ConnectedAccount:
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool


class StripeGateway:
    def __init__(self) -> None:
        self._client: Any = None

    def _stripe(self) -> Any:
        if self._client is None:
            import stripe

            from chalicelib.core import secrets

            s = get_settings()
            key = secrets.resolve("stripe-secret-key", s.stripe_secret_key.get_secret_value(), s.stripe_secret_arn,
                                  lambda: "sk_test_local")
            kwargs: dict[str, Any] = {}
            if s.stripe_api_base:
                kwargs["base_addresses"] = {"api": s.stripe_api_base}
            self._client = stripe.StripeClient(key, max_network_retries=2, **kwargs)
        return self._client

    def _call(self, fn, *args, **kwargs) -> Any:
        import stripe

        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise AppError(code="payment_provider_unavailable", status=503, headers={"Retry-After": "30"},
                           detail=type(exc).__name__) from exc

    def create_connected_account(self, clinic_id: str, country: str, email: Optional[str],
                                 idempotency_key: str) -> ConnectedAccount:
        params: dict[str, Any] = {
            "type": "express", "country": country, "metadata": {"clinic_id": clinic_id},
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        }
        if email:
            params["email"] = email
        acct = self._call(self._stripe().v1.accounts.create, params=params,
                          options={"idempotency_key": idempotency_key})
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

        s = get_settings()
        secret = secrets.resolve("stripe-webhook-secret", s.stripe_webhook_secret.get_secret_value(),
                                 None, lambda: "whsec_local")
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



