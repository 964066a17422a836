"""The one composition root: builds services and gateways from settings, and wires them together.

Api modules, jobs, the authorizer, the local runner and tests take what they need from here and
nowhere else. Everything is built on first use and cached per process (a Lambda container), so
importing this module costs nothing at cold start. ``reset()`` forgets it all (tests, new settings).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")
_built: dict[str, Any] = {}


def _once(name: str, make: Callable[[], T]) -> T:
    if name not in _built:
        _built[name] = make()
    return _built[name]


def provide(name: str, value: Any) -> None:
    """Put a ready-made gateway in place of the one settings would build (the e2e SMS outbox)."""
    _built[name] = value


def reset() -> None:
    """Forget every service, gateway, client, key and setting built so far."""
    from chalicelib.core import aws, secrets, settings, tokens

    _built.clear()
    settings.reset_settings()
    aws.reset_clients()
    secrets.clear_cache()
    tokens.reset_keys()


# ------------------------------------------------------------------ gateways

def settings() -> Any:
    from chalicelib.core.settings import get_settings

    return get_settings()


def sms() -> Any:
    def make() -> Any:
        from chalicelib.core.sms import build_sms_gateway

        return build_sms_gateway(settings())
    return _once("sms", make)


def email() -> Any:
    def make() -> Any:
        from chalicelib.core.email import build_email_gateway

        return build_email_gateway(settings())
    return _once("email", make)


def stripe() -> Any:
    def make() -> Any:
        from chalicelib.payments.stripe_gateway import StripeGateway

        return StripeGateway()
    return _once("stripe", make)


def push() -> Any:
    def make() -> Any:
        from chalicelib.notify.push import build_push_gateway

        return build_push_gateway(settings())
    return _once("push", make)


def video() -> Any:
    def make() -> Any:
        from chalicelib.booking.video import build_video_gateway

        return build_video_gateway(settings())
    return _once("video", make)


def kms() -> Any:
    def make() -> Any:
        from chalicelib.records.crypto import KmsGateway

        return KmsGateway(settings())
    return _once("kms", make)


def sealer() -> Any:
    """Envelope encryption of card data (records/crypto.py); its data-key cache lives as long as the process."""
    def make() -> Any:
        from chalicelib.records.crypto import Sealer

        s = settings()
        return Sealer(kms(), s.records_data_key_ttl_s, s.records_data_key_max_uses)
    return _once("sealer", make)


# ------------------------------------------------------------------ services

def identity() -> Any:
    def make() -> Any:
        from chalicelib.identity.service import IdentityService

        return IdentityService(settings(), sms())
    return _once("identity", make)


def clinics() -> Any:
    def make() -> Any:
        from chalicelib.clinics.service import ClinicService

        return ClinicService(settings(), sms(), email(), stripe())
    return _once("clinics", make)


def booking() -> Any:
    def make() -> Any:
        from chalicelib.booking.service import BookingService

        return BookingService(settings(), sms(), video())
    return _once("booking", make)


def records() -> Any:
    def make() -> Any:
        from chalicelib.records.service import RecordsService
        from chalicelib.records.storage import DocumentStorage

        return RecordsService(settings(), sealer(), DocumentStorage(settings(), kms()))
    return _once("records", make)


def notify() -> Any:
    def make() -> Any:
        from chalicelib.notify.delivery import build_delivery_queue
        from chalicelib.notify.service import NotifyService

        return NotifyService(settings(), push(), sms(), build_delivery_queue(settings()))
    return _once("notify", make)


def wallet() -> Any:
    """The cashback wallet (payments/wallet.py): payments spend through it, its handlers earn and give back."""
    def make() -> Any:
        from chalicelib.payments.wallet import Wallet

        return Wallet()
    return _once("wallet", make)


def payments() -> Any:
    def make() -> Any:
        from chalicelib.payments.service import PaymentsService

        return PaymentsService(settings(), stripe(), sms(), booking(), wallet())
    return _once("payments", make)


def analytics() -> Any:
    def make() -> Any:
        from chalicelib.analytics.service import AnalyticsService

        return AnalyticsService(settings(), notify)
    return _once("analytics", make)


def outbox() -> Any:
    """The event consumer, with every feature's handlers registered by kind."""
    def make() -> Any:
        from chalicelib.analytics.jobs import event_handlers as analytics_handlers
        from chalicelib.booking.jobs import event_handlers as booking_handlers
        from chalicelib.core.events import Outbox
        from chalicelib.identity.jobs import event_handlers as identity_handlers
        from chalicelib.notify.jobs import event_handlers as notify_handlers
        from chalicelib.payments.jobs import event_handlers as payments_handlers
        from chalicelib.payments.wallet_jobs import event_handlers as wallet_handlers
        from chalicelib.records.jobs import event_handlers as records_handlers

        handlers: dict[str, list[tuple[str, Any]]] = {}
        for registry in (booking_handlers(booking()), identity_handlers(identity()), notify_handlers(notify()),
                         wallet_handlers(wallet()), payments_handlers(payments()),
                         analytics_handlers(analytics()), records_handlers(records())):
            for kind, entries in registry.items():
                handlers.setdefault(kind, []).extend(entries)
        return Outbox(handlers)
    return _once("outbox", make)
