"""HTTP routes of slots, bookings, waitlist, invitations, telemedicine and the urgent queue."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint, Response

from chalicelib import bootstrap
from chalicelib.core.errors import field_invalid
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, no_content, parse_query, route
from chalicelib.identity.api import body
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.booking import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.booking.models")

bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}
B = "/bookings/{booking_id}"
ICS = "text/calendar; charset=utf-8"


def service():
    return bootstrap.booking()


def _specialty(value: str) -> str:
    import re

    if not re.match(r"^[a-z][a-z0-9_]{1,39}$", value):
        raise field_invalid("specialty", "invalid", "a specialty like cardiologist")
    return value


# ------------------------------------------------------------------ slots and booking

@route(bp, "/catalog/doctors/{doctor_id}/slots")
def free_slots(request, caller, doctor_id):
    return service().free_slots(doctor_id, parse_query(request, m.SlotsQuery))


@route(bp, "/bookings", methods=("POST",), **AUTH)
def book(request, caller):
    key = (request.headers or {}).get("idempotency-key")
    if key is not None and not (8 <= len(key) <= 128 and key.isprintable()):
        raise field_invalid("Idempotency-Key", "invalid", "8 to 128 printable characters")
    result, created = service().book(caller, body(request, m.BookingIn), key)
    return json_response(result, 201 if created else 200)


@route(bp, B, **AUTH)
def get_booking(request, caller, booking_id):
    return service().get(caller, booking_id)


@route(bp, B + "/ics", **AUTH)
def booking_ics(request, caller, booking_id):
    return Response(body=service().ics(caller, booking_id), status_code=200,
                    headers={"Content-Type": ICS, "Content-Disposition": f'attachment; filename="{booking_id}.ics"'})


@route(bp, B + "/cancel", methods=("POST",), **AUTH)
def cancel(request, caller, booking_id):
    return service().cancel(caller, booking_id, body(request, m.CancelIn))


@route(bp, B + "/reassign", methods=("POST",), **AUTH)
def reassign(request, caller, booking_id):
    return service().reassign(caller, booking_id, body(request, m.ReassignIn))


@route(bp, B + "/reschedule", methods=("POST",), **AUTH)
def reschedule(request, caller, booking_id):
    return service().reschedule(caller, booking_id, body(request, m.RescheduleIn))


@route(bp, B + "/confirm-payment", methods=("POST",), **AUTH)
def confirm_payment(request, caller, booking_id):
    return service().confirm_payment(caller, booking_id)


@route(bp, B + "/complete", methods=("POST",), **AUTH)
def complete(request, caller, booking_id):
    return service().complete(caller, booking_id)


@route(bp, B + "/no-show", methods=("POST",), **AUTH)
def no_show(request, caller, booking_id):
    return service().no_show(caller, booking_id)


@route(bp, B + "/accept", methods=("POST",), **AUTH)
def accept(request, caller, booking_id):
    return service().accept(caller, booking_id)


@route(bp, B + "/decline", methods=("POST",), **AUTH)
def decline(request, caller, booking_id):
    return service().decline(caller, booking_id)


@route(bp, B + "/video", **AUTH)
def video(request, caller, booking_id):
    return service().video(caller, booking_id)


@route(bp, B + "/messages", methods=("POST",), **AUTH)
def post_message(request, caller, booking_id):
    return json_response(service().post_message(caller, booking_id, body(request, m.MessageIn)), 201)


@route(bp, B + "/messages", **AUTH)
def messages(request, caller, booking_id):
    return service().messages(caller, booking_id, parse_query(request, m.Page))


@route(bp, "/visit-invitations", methods=("POST",), **AUTH)
def invite(request, caller):
    return json_response(service().invite(caller, body(request, m.InviteIn)), 201)


# ------------------------------------------------------------------ lists and calendars

@route(bp, "/me/bookings", **AUTH)
def my_bookings(request, caller):
    return service().my_bookings(caller, parse_query(request, m.ListQuery))


@route(bp, "/me/agenda", **AUTH)
def agenda(request, caller):
    return service().agenda(caller, parse_query(request, m.AgendaQuery))


@route(bp, "/me/calendar-feed", **AUTH)
def calendar_feed_url(request, caller):
    return service().feed_token(caller)


@route(bp, "/calendar/{token}")
def calendar_feed(request, caller, token):
    return Response(body=service().feed(token), status_code=200, headers={"Content-Type": ICS})


@route(bp, "/clinics/{clinic_id}/calendar", **AUTH)
def clinic_calendar(request, caller, clinic_id):
    return service().clinic_calendar(caller, clinic_id, parse_query(request, m.RangeQuery))


# ------------------------------------------------------------------ waitlist

@route(bp, "/waitlist", methods=("POST",), **AUTH)
def join_waitlist(request, caller):
    return json_response(service().join_waitlist(caller, body(request, m.WaitlistIn)), 201)


@route(bp, "/me/waitlist", **AUTH)
def my_waitlist(request, caller):
    return service().my_waitlist(caller, parse_query(request, m.Page))


@route(bp, "/waitlist/{waitlist_id}", methods=("DELETE",), **AUTH)
def leave_waitlist(request, caller, waitlist_id):
    service().leave_waitlist(caller, waitlist_id)
    return no_content()


# ------------------------------------------------------------------ urgent queue

@route(bp, "/urgent/{specialty}/queue", methods=("POST",), **AUTH)
def join_queue(request, caller, specialty):
    return json_response(service().join_queue(caller, _specialty(specialty), body(request, m.UrgentJoin)), 201)


@route(bp, "/urgent/{specialty}/queue/me", **AUTH)
def queue_status(request, caller, specialty):
    return service().queue_status(caller, _specialty(specialty))


@route(bp, "/urgent/{specialty}/queue/me", methods=("DELETE",), **AUTH)
def leave_queue(request, caller, specialty):
    service().leave_queue(caller, _specialty(specialty))
    return no_content()


@route(bp, "/urgent/{specialty}/take", methods=("POST",), **AUTH)
def take_next(request, caller, specialty):
    return service().take_next(caller, _specialty(specialty))
