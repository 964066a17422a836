"""HTTP routes of the medical card: entries, sharing grants, the access log and the doctor's side."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core.errors import field_invalid
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, no_content, parse_query, route
from chalicelib.identity.api import body
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.records import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.records.models")


bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}


def service():
    return bootstrap.records()


def _section(value: str) -> str:
    if value not in m.SECTIONS:
        raise field_invalid("section", "unknown_section", "one of " + ", ".join(m.SECTIONS))
    return value


def _if_match(request):
    """The version an edit is conditioned on, from ``If-Match: "<n>"`` (absent or ``*``: unconditional)."""
    raw = ((request.headers or {}).get("if-match") or "").strip()
    if raw in ("", "*"):
        return None
    tag = raw.removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise field_invalid("If-Match", "invalid_etag", 'an ETag as returned by the read, e.g. "3"')
    return int(tag)


def _tagged(view: dict, status: int = 200, key: str = "version"):
    return json_response(view, status, headers={"ETag": f'"{view[key]}"'})


def _entry(request, section: str):
    return body(request, m.ENTRY_MODELS[section])


# ------------------------------------------------------------------ the patient's card

@route(bp, "/me/card", **AUTH)
def my_card(request, caller):
    return service().my_card(caller)


@route(bp, "/me/card/export", **AUTH)
def export(request, caller):
    return json_response(service().export(caller), headers={"Content-Type": "application/fhir+json"})


@route(bp, "/me/card/documents", methods=("POST",), **AUTH)
def create_upload(request, caller):
    return json_response(service().create_upload(caller, body(request, m.DocumentIn)), 201)


@route(bp, "/me/card/documents/{document_id}/complete", methods=("POST",), **AUTH)
def complete_upload(request, caller, document_id):
    body(request, m.Strict)
    return service().complete_upload(caller, document_id)


@route(bp, "/me/card/documents/{document_id}/download", **AUTH)
def my_download(request, caller, document_id):
    return service().download(caller, caller.user_id, document_id)


@route(bp, "/patients/{patient_id}/card/documents", methods=("POST",), **AUTH)
def doctor_upload(request, caller, patient_id):
    return json_response(service().create_upload(caller, body(request, m.DocumentIn), patient_id), 201)


@route(bp, "/patients/{patient_id}/card/documents/{document_id}/complete", methods=("POST",), **AUTH)
def doctor_complete_upload(request, caller, patient_id, document_id):
    body(request, m.Strict)
    return service().complete_upload(caller, document_id, patient_id)


@route(bp, "/patients/{patient_id}/card/documents/{document_id}/download", **AUTH)
def shared_download(request, caller, patient_id, document_id):
    return service().download(caller, patient_id, document_id)


@route(bp, "/me/card/{section}", methods=("POST",), **AUTH)
def add_entry(request, caller, section):
    section = _section(section)
    return _tagged(service().add_entry(caller, section, _entry(request, section)), 201)


@route(bp, "/me/card/{section}/{entry_id}", methods=("PUT",), **AUTH)
def edit_entry(request, caller, section, entry_id):
    section = _section(section)
    return _tagged(service().edit_entry(caller, section, entry_id, _entry(request, section), _if_match(request)))


@route(bp, "/me/card/{section}/{entry_id}", methods=("DELETE",), **AUTH)
def delete_entry(request, caller, section, entry_id):
    service().delete_entry(caller, _section(section), entry_id, _if_match(request))
    return no_content()


@route(bp, "/me/card/{section}/{entry_id}/versions", **AUTH)
def entry_versions(request, caller, section, entry_id):
    return service().entry_versions(caller, _section(section), entry_id)


# ------------------------------------------------------------------ sharing and the access log

@route(bp, "/me/card-grants", methods=("POST",), **AUTH)
def grant(request, caller):
    return json_response(service().grant(caller, body(request, m.GrantIn)), 201)


@route(bp, "/me/card-grants", **AUTH)
def grants(request, caller):
    return service().grants(caller, parse_query(request, m.Page))


@route(bp, "/me/card-grants/{grant_id}", methods=("DELETE",), **AUTH)
def revoke(request, caller, grant_id):
    service().revoke(caller, grant_id)
    return no_content()


@route(bp, "/me/card-access-log", **AUTH)
def access_log(request, caller):
    return service().access_log(caller, parse_query(request, m.Page))


# ------------------------------------------------------------------ the doctor's side

@route(bp, "/me/patients", **AUTH)
def my_patients(request, caller):
    return service().my_patients(caller, parse_query(request, m.Page))


@route(bp, "/patients/{patient_id}/card", **AUTH)
def shared_card(request, caller, patient_id):
    return service().shared_card(caller, patient_id)


@route(bp, "/patients/{patient_id}/card/export", **AUTH)
def shared_export(request, caller, patient_id):
    return json_response(service().shared_export(caller, patient_id), headers={"Content-Type": "application/fhir+json"})


@route(bp, "/patients/{patient_id}/card/{section}", methods=("POST",), **AUTH)
def doctor_add_entry(request, caller, patient_id, section):
    section = _section(section)
    return json_response(service().doctor_add_entry(caller, patient_id, section, _entry(request, section)), 201)


# ------------------------------------------------------------------ visit conclusions

V = "/bookings/{booking_id}/conclusion"


@route(bp, V, methods=("PUT",), **AUTH)
def save_conclusion(request, caller, booking_id):
    return _tagged(service().conclusions.save_draft(caller, booking_id, body(request, m.ConclusionIn),
                                                    _if_match(request)), key="revision")


@route(bp, V + "/sign", methods=("POST",), **AUTH)
def sign_conclusion(request, caller, booking_id):
    body(request, m.Strict)  # no fields; still rejects unknown ones and bad JSON
    return _tagged(service().conclusions.sign(caller, booking_id, _if_match(request)), key="revision")


@route(bp, V + "/amendments", methods=("POST",), **AUTH)
def amend_conclusion(request, caller, booking_id):
    return _tagged(service().conclusions.amend(caller, booking_id, body(request, m.ConclusionIn),
                                               _if_match(request)), 201, key="revision")


@route(bp, V, **AUTH)
def visit_conclusion(request, caller, booking_id):
    return service().conclusions.of_visit(caller, booking_id)
