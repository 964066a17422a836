"""Booking's messages go through notify: push to the person's devices, SMS only when no push arrived, and
everything in the inbox (before, booking sent a bare SMS from its own handlers, whatever the person had)."""
from __future__ import annotations

import pytest

from tests.conftest import body, jpost
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import ok, world
from tests.unit.notify_setup import fcm_token, register


@pytest.fixture
def w(fcm, client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def test_a_waitlist_offer_is_pushed_to_the_waiting_patients_phone_and_kept_in_the_inbox(fcm, client, outbox, w,
                                                                                        drain):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    waiting = patient(client, outbox, "+79130000001")
    tok = fcm_token()
    assert register(client, waiting["token"], tok, language="ru").status_code == 201
    ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": w["service_id"],
                                   "doctor_id": w["doctor"]["user_id"], "date_from": "2026-11-30",
                                   "date_to": "2026-12-06"}, token=waiting["token"]), 201)
    sms_before = len(outbox.to(waiting["phone"]))
    ok(jpost(client, f"/bookings/{booked['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    from chalicelib import bootstrap
    from chalicelib.core import clock

    bootstrap.outbox().drain(rounds=1)  # booking.cancelled: the freed time is offered (waitlist.offered)
    offered = [e for e in bootstrap.outbox().due(clock.now(), 100) if e["kind"] == "waitlist.offered"]
    assert len(offered) == 1
    drain()
    assert drain().dead == 0
    assert fcm.tokens_sent() == [tok]
    push = fcm.sent[0][1]
    offer = [b for b in ok(jpost(client, "/me/bookings", token=waiting["token"], method="get"))["items"]
             if b["status"] == "offered"][0]
    assert push["data"]["link"] == f"booking/{offer['booking_id']}" and push["data"]["kind"] == "waitlist_offer"
    # the offer's time on the Kaliningrad clinic's wall clock, in the language of the person's profile (en)
    local = offer["start"]["local"]  # e.g. 2026-11-30T09:00+02:00
    assert f"{local[11:16]} (Europe/Kaliningrad, UTC+02:00)" in push["notification"]["body"]
    assert len(outbox.to(waiting["phone"])) == sms_before  # pushed, so no SMS
    inbox = body(jpost(client, "/me/inbox", token=waiting["token"], method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["waitlist_offer"] and inbox["unread"] == 1
    # notify's handler run again on the same event (a redelivery past the outbox) sends nothing twice
    (name, handler), = [h for h in bootstrap.outbox().handlers["waitlist.offered"] if h[0].startswith("notify")]
    assert name == "notify_offer"
    handler(offered[0])
    assert len(fcm.sent) == 1
    assert body(jpost(client, "/me/inbox", token=waiting["token"], method="get"))["unread"] == 1


def test_a_visit_the_clinic_cancels_reaches_a_patient_without_the_app_by_sms(fcm, client, outbox, w, drain):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    before = len(outbox.to(w["patient"]["phone"]))
    r = jpost(client, f"/bookings/{booked['booking_id']}/cancel", {"reason": "the doctor is ill"},
              token=w["admin_a"]["token"])
    assert r.status_code == 200, r.body
    drain()
    told = outbox.to(w["patient"]["phone"])[before:]
    assert len(told) == 1 and "cancelled your visit on" in told[0] and "(Europe/Kaliningrad, UTC+02:00)" in told[0]
    assert fcm.sent == []
    inbox = body(jpost(client, "/me/inbox", token=w["patient"]["token"], method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["cancelled_by_clinic"]
