"""A doctor's leave, or a doctor leaving the clinic with the visits kept for reassignment, tells the patients
of the visits it hits: once per (leave, visit), neutral text, the time on the clinic's wall clock."""
from __future__ import annotations

import pytest

from tests.conftest import body, jpost
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import ok, world


@pytest.fixture
def w(fcm, client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def inbox_kinds(client, tok):
    return [i["kind"] for i in body(jpost(client, "/me/inbox", token=tok, method="get"))["items"]]


def test_a_leave_tells_each_patient_whose_visit_it_hits_once(fcm, client, outbox, w, drain):
    from chalicelib import bootstrap

    free = slots(client, w)
    first = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    other = patient(client, outbox, "+79130000002")
    ok(book(client, w, other["token"], free[1]["start"]), 201)
    spared = patient(client, outbox, "+79130000003")
    later = slots(client, w, day="2026-12-07")[0]  # a visit the next Monday: the leave misses it
    ok(book(client, w, spared["token"], later["start"]), 201)
    drain()
    before = {p: len(outbox.to(p)) for p in (w["patient"]["phone"], other["phone"], spared["phone"])}
    leave = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/exceptions",
                     {"kind": "leave", "date_from": free[0]["start"][:10], "date_until": free[0]["start"][:10]},
                     token=w["admin_a"]["token"]), 201)
    assert len(leave["affected_bookings"]) == 2
    from chalicelib.core import clock

    events = [e for e in bootstrap.outbox().due(clock.now(), 100) if e["kind"] == "schedule.leave_added"]
    assert len(events) == 1
    drain()
    for p in (w["patient"]["phone"], other["phone"]):
        told = outbox.to(p)[before[p]:]
        assert len(told) == 1, told  # no app: by SMS (it must arrive)
        assert "may change" in told[0] and "(Europe/Kaliningrad, UTC+02:00)" in told[0]
        assert "another doctor or time" in told[0]
    assert len(outbox.to(spared["phone"])) == before[spared["phone"]]
    assert "visit_may_change" in inbox_kinds(client, w["patient"]["token"])
    assert "visit_may_change" not in inbox_kinds(client, spared["token"])
    # the event delivered a second time sends nothing again
    (name, handler), = [h for h in bootstrap.outbox().handlers["schedule.leave_added"] if h[0] == "notify_leave"]
    handler(events[0])
    assert len(outbox.to(w["patient"]["phone"])) == before[w["patient"]["phone"]] + 1
    assert inbox_kinds(client, w["patient"]["token"]).count("visit_may_change") == 1
    assert first["booking_id"]


def test_the_doctors_own_leave_tells_in_russian(fcm, client, outbox, w, drain):
    free = slots(client, w)
    ru = patient(client, outbox, "+79130000004")
    ok(jpost(client, "/me", {"language": "ru"}, token=ru["token"], method="patch"))
    ok(book(client, w, ru["token"], free[0]["start"]), 201)
    drain()
    before = len(outbox.to(ru["phone"]))
    ok(jpost(client, "/me/schedule/leave", {"date_from": free[0]["start"][:10], "date_until": free[0]["start"][:10]},
             token=w["doctor"]["token"]), 201)
    drain()
    told = outbox.to(ru["phone"])[before:]
    assert len(told) == 1 and "может измениться" in told[0] and "другого врача или время" in told[0]


def test_a_doctor_removed_with_visits_kept_tells_their_patients(fcm, client, outbox, w, drain):
    free = slots(client, w)
    booked = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    drain()
    before = len(outbox.to(w["patient"]["phone"]))
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}",
              {"future_bookings": "keep_for_reassignment"}, token=w["admin_a"]["token"], method="delete")
    assert r.status_code == 204, r.body
    drain()
    drain()
    told = outbox.to(w["patient"]["phone"])[before:]
    assert len(told) == 1 and "may change" in told[0]
    status = ok(jpost(client, f"/bookings/{booked['booking_id']}", token=w["patient"]["token"], method="get"))
    assert status["status"] in ("held", "confirmed")  # kept: the clinic reassigns it
