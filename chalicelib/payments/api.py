"""HTTP routes of payments: the patient's prepayment and history, the clinic's links, desk payments, refunds,
transactions, daily totals and CSV export. (The provider's webhook is ``POST /webhooks/stripe`` in clinics.)"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint, Response

from chalicelib import bootstrap
from chalicelib.core.errors import field_invalid
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, language, parse_query, route
from chalicelib.identity.api import body
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.payments import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.payments.models")

bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}
C = "/clinics/{clinic_id}/payments"


def service():
    return bootstrap.payments()


def _key(request) -> str | None:
    key = (request.headers or {}).get("idempotency-key")
    if key is not None and not (8 <= len(key) <= 128 and key.isprintable()):
        raise field_invalid("Idempotency-Key", "invalid", "8 to 128 printable characters")
    return key


@route(bp, "/bookings/{booking_id}/payment", methods=("POST",), **AUTH)
def create_payment(request, caller, booking_id):
    _key(request)  # accepted for symmetry: the payment is idempotent by its booking, attempt and amounts
    return json_response(service().create_intent(caller, booking_id, body(request, m.PaymentIn).cashback_spend), 201)


@route(bp, "/payments/{payment_id}", **AUTH)
def get_payment(request, caller, payment_id):
    return service().get(caller, payment_id)


@route(bp, "/me/payments", **AUTH)
def my_payments(request, caller):
    return service().history(caller, parse_query(request, m.HistoryQuery))


@route(bp, C + "/links", methods=("POST",), **AUTH)
def send_link(request, caller, clinic_id):
    return json_response(service().send_link(caller, clinic_id, body(request, m.LinkIn).booking_id), 201)


@route(bp, C + "/reception", methods=("POST",), **AUTH)
def reception_payment(request, caller, clinic_id):
    return json_response(service().record_reception(caller, clinic_id, body(request, m.ReceptionIn)), 201)


@route(bp, C + "/{payment_id}/refunds", methods=("POST",), **AUTH)
def refund(request, caller, clinic_id, payment_id):
    result, created = service().refund(caller, clinic_id, payment_id, body(request, m.RefundIn), _key(request))
    return json_response(result, 202 if created else 200)


@route(bp, C + "/{payment_id}/refunds/{refund_id}/payout", methods=("POST",), **AUTH)
def pay_out_refund(request, caller, clinic_id, payment_id, refund_id):
    """A refund owed at the reception handed back to the patient (who, when)."""
    return service().pay_out_refund(caller, clinic_id, payment_id, refund_id, body(request, m.PayoutIn))


@route(bp, C, **AUTH)
def transactions(request, caller, clinic_id):
    return service().transactions(caller, clinic_id, parse_query(request, m.TransactionsQuery))


@route(bp, C + "/daily", **AUTH)
def daily_totals(request, caller, clinic_id):
    return service().daily_totals(caller, clinic_id, parse_query(request, m.TotalsQuery))


@route(bp, C + "/export", **AUTH)
def export_csv(request, caller, clinic_id):
    q = parse_query(request, m.TotalsQuery)
    text = service().export_csv(caller, clinic_id, m.TransactionsQuery(date_from=q.date_from, date_to=q.date_to),
                                language(request))
    name = f"transactions-{q.date_from.isoformat()}-{q.date_to.isoformat()}.csv"
    return Response(body=text, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"'})
