"""The wallet's event handlers and its expiry job.

Handlers are registered in ``bootstrap.outbox()``. Each derives what to write from stored state under
version conditions (the visit's projection, the spend record, the wallet head), so an event delivered
twice, or after a later one, writes nothing twice.
"""
from __future__ import annotations

from typing import Any, Callable

from chalice.app import Blueprint

bp = Blueprint(__name__)

Handler = Callable[[dict[str, Any]], None]


def event_handlers(wallet: Any) -> dict[str, list[tuple[str, Handler]]]:
    def on(fn: Callable[[dict[str, Any]], None]) -> Handler:
        return lambda event: fn(event["data"])

    return {
        "payment.succeeded": [("wallet_base", on(wallet.on_payment_succeeded))],
        "payment.refunded": [("wallet_base", on(wallet.on_payment_refunded)),
                             ("wallet_return", on(wallet.on_refund_returns_spent))],
        # a desk payment's policy refund owed at the reception reverses cashback when it is owed, as a refund
        "payment.refund_owed": [("wallet_base", on(wallet.on_payment_refunded)),
                                ("wallet_return", on(wallet.on_refund_returns_spent))],
        "payment.released": [("wallet_return", on(wallet.on_payment_released))],
        "booking.completed": [("wallet_earn", on(wallet.on_booking_completed))],
        "wallet.spent": [("wallet_count", on(wallet.on_spent))],
    }


@bp.schedule("rate(1 hour)")
def expire_cashback(event):
    """Write off cashback lots past their date (the sparse CASHDUE#<n> partitions of GSI2). ``read`` never
    counts an expired lot even before this runs; the job keeps the ledger and the clinic's liability true."""
    from chalicelib import bootstrap
    from chalicelib.core import clock

    return bootstrap.wallet().expire_due(clock.now())
