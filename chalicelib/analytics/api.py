"""HTTP routes of analytics: a clinic's dashboard, recall segments (and their CSV export), recalls, and a
doctor's own figures."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint, Response

from chalicelib import bootstrap
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, language, parse_body, parse_query, route
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.analytics import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.analytics.models")

bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}
A = "/clinics/{clinic_id}/analytics"


def service():
    return bootstrap.analytics()


@route(bp, A, **AUTH)
def clinic_analytics(request, caller, clinic_id):
    return service().dashboard(caller, clinic_id, parse_query(request, m.PeriodQuery))


@route(bp, A + "/segments", **AUTH)
def clinic_segment(request, caller, clinic_id):
    return service().segment(caller, clinic_id, parse_query(request, m.SegmentQuery))


@route(bp, A + "/segments/export", **AUTH)
def clinic_segment_export(request, caller, clinic_id):
    text = service().export(caller, clinic_id, parse_query(request, m.ExportQuery), language(request))
    return Response(body=text, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="segment.csv"'})


@route(bp, A + "/recalls", methods=("POST",), **AUTH)
def clinic_recall(request, caller, clinic_id):
    req = parse_body(request, m.RecallIn, bootstrap.settings().max_body_bytes)
    return json_response(service().recall(caller, clinic_id, req), 202)


@route(bp, "/me/analytics", **AUTH)
def my_analytics(request, caller):
    return service().my_figures(caller, parse_query(request, m.MyPeriodQuery))
