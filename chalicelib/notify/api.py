"""HTTP routes of devices and the in-app inbox."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, no_content, parse_body, parse_query, route
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.notify import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.notify.models")


bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}


def service():
    return bootstrap.notify()


@route(bp, "/me/devices", methods=("POST",), **AUTH)
def register_device(request, caller):
    view, created = service().register_device(caller, parse_body(request, m.DeviceIn,
                                                                  bootstrap.settings().max_body_bytes))
    return json_response(view, 201 if created else 200)


@route(bp, "/me/devices", **AUTH)
def list_devices(request, caller):
    return service().list_devices(caller)


@route(bp, "/me/devices/{device_id}", methods=("DELETE",), **AUTH)
def remove_device(request, caller, device_id):
    service().remove_device(caller, device_id)
    return no_content()


@route(bp, "/me/inbox", **AUTH)
def inbox(request, caller):
    return service().inbox(caller, parse_query(request, m.InboxQuery))


@route(bp, "/me/inbox/{message_id}/read", methods=("POST",), **AUTH)
def mark_read(request, caller, message_id):
    return service().mark_read(caller, message_id)


@route(bp, "/me/inbox/read-all", methods=("POST",), **AUTH)
def mark_all_read(request, caller):
    return service().mark_all_read(caller)


@route(bp, "/me/notification-settings", **AUTH)
def get_preferences(request, caller):
    return service().get_preferences(caller)


@route(bp, "/me/notification-settings", methods=("PUT",), **AUTH)
def set_preferences(request, caller):
    from chalicelib.core.errors import field_invalid

    if not (request.raw_body or b"").strip():  # PUT replaces the settings: say them (an empty {} means defaults)
        raise field_invalid("body", "required", "send the settings, e.g. {} for the defaults")
    return service().set_preferences(caller, parse_body(request, m.PreferencesIn, bootstrap.settings().max_body_bytes))


@route(bp, "/feedback", methods=("POST",), **AUTH)
def give_feedback(request, caller):
    from chalicelib.notify import feedback

    return json_response(feedback.give(caller, parse_body(request, m.FeedbackIn, bootstrap.settings().max_body_bytes)),
                         201)


@route(bp, "/clinics/{clinic_id}/feedback", **AUTH)
def clinic_feedback(request, caller, clinic_id):
    from chalicelib.notify import feedback

    return feedback.read(caller, clinic_id, parse_query(request, m.FeedbackQuery))
