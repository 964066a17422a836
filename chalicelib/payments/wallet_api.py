"""HTTP routes of the cashback wallet: the patient's wallets and a clinic's outstanding cashback."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import parse_query, route
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.payments import wallet_models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.payments.wallet_models")


bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}


@route(bp, "/me/wallets", **AUTH)
def my_wallets(request, caller):
    q = parse_query(request, m.PageQuery)
    return bootstrap.wallet().my_wallets(caller, q.limit, q.cursor)


@route(bp, "/me/wallets/{clinic_id}", **AUTH)
def my_wallet(request, caller, clinic_id):
    q = parse_query(request, m.PageQuery)
    return bootstrap.wallet().my_wallet(caller, clinic_id, q.limit, q.cursor)


@route(bp, "/clinics/{clinic_id}/cashback", **AUTH)
def clinic_cashback(request, caller, clinic_id):
    return bootstrap.wallet().clinic_report(caller, clinic_id, parse_query(request, m.CashbackQuery))
