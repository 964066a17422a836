"""Feedback after a visit: asked for once the visit is completed, one answer per visit (NPS 0-10 and a
comment), read by the clinic's administrators only, per clinic and per doctor; never by the doctor."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import body, jpost, log_in, relogin
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import ok, world


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def completed_visit(client, outbox, fixed_clock, w, drain, index=0):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[index]["start"]), 201)
    fixed_clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))
    relogin(client, w["doctor"], fixed_clock)
    ok(jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["doctor"]["token"]))
    drain()
    return b


def test_a_completed_visit_asks_for_feedback_once_and_takes_one_answer(client, outbox, fixed_clock, w, drain):
    b = completed_visit(client, outbox, fixed_clock, w, drain)
    patient = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    inbox = body(jpost(client, "/me/inbox", token=patient, method="get"))
    asks = [i for i in inbox["items"] if i["kind"] == "feedback_request"]
    assert len(asks) == 1 and asks[0]["link"] == f"feedback/{b['booking_id']}"

    bad = [({"booking_id": b["booking_id"], "score": 11}, "score"),
           ({"booking_id": b["booking_id"], "score": -1}, "score"),
           ({"booking_id": b["booking_id"], "score": 8.5}, "score"),
           ({"booking_id": b["booking_id"], "score": 8, "comment": "x" * 2001}, "comment"),
           ({"booking_id": "nope", "score": 8}, "booking_id"),
           ({"score": 8}, "booking_id")]
    for payload, field in bad:
        r = jpost(client, "/feedback", payload, token=patient)
        assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == [field], (payload, r.body)

    r = jpost(client, "/feedback", {"booking_id": b["booking_id"], "score": 9, "comment": "Врач внимателен"},
              token=patient)
    assert r.status_code == 201, r.body
    r = jpost(client, "/feedback", {"booking_id": b["booking_id"], "score": 2}, token=patient)
    assert r.status_code == 409 and body(r)["code"] == "feedback_given"

    relogin(client, w["admin_a"], fixed_clock)
    page = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/feedback?doctor_id={w['doctor']['user_id']}",
                    token=w["admin_a"]["token"], method="get"))
    assert [(i["score"], i["comment"]) for i in page["items"]] == [(9, "Врач внимателен")]
    assert page["clinic"] == {"answers": 1, "promoters": 1, "passives": 0, "detractors": 0, "nps": 100,
                              "average": 9.0}
    assert page["doctor"]["answers"] == 1


def test_only_the_clinics_administrators_read_feedback(client, outbox, fixed_clock, w, drain):
    b = completed_visit(client, outbox, fixed_clock, w, drain)
    patient = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    ok(jpost(client, "/feedback", {"booking_id": b["booking_id"], "score": 3, "comment": "долго ждал"},
             token=patient), 201)
    cid = w["a"]["clinic_id"]
    r = jpost(client, f"/clinics/{cid}/feedback", token=w["doctor"]["token"], method="get")
    assert r.status_code == 403 and "долго" not in r.body.decode()
    assert jpost(client, f"/clinics/{cid}/feedback", token=patient, method="get").status_code == 403
    relogin(client, w["admin_b"], fixed_clock)  # another clinic's administrator
    r = jpost(client, f"/clinics/{cid}/feedback", token=w["admin_b"]["token"], method="get")
    assert r.status_code == 404
    # a visit not completed cannot be rated
    other = ok(book(client, w, patient, slots(client, w, day="2026-12-07")[0]["start"]), 201)
    r = jpost(client, "/feedback", {"booking_id": other["booking_id"], "score": 10}, token=patient)
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


def test_nps_per_clinic_and_per_doctor(client, outbox, fixed_clock, w, drain):
    from chalicelib.notify import store
    from chalicelib.notify.feedback import band

    cid, did = w["a"]["clinic_id"], w["doctor"]["user_id"]
    for i, score in enumerate((10, 9, 8, 6, 0)):
        assert store.add_feedback({"booking_id": f"01JD6R7B8K9M0N1P2Q3R4S5T{i:02d}", "clinic_id": cid,
                                   "doctor_id": did, "score": score, "band": band(score),
                                   "created_at": f"2026-11-30T1{i}:00:00Z"})
    relogin(client, w["admin_a"], fixed_clock)
    page = ok(jpost(client, f"/clinics/{cid}/feedback?limit=2", token=w["admin_a"]["token"], method="get"))
    assert page["clinic"] == {"answers": 5, "promoters": 2, "passives": 1, "detractors": 2, "nps": 0,
                              "average": 6.6}
    assert len(page["items"]) == 2 and page["next_cursor"]


def test_a_clinic_that_turned_feedback_off_does_not_ask_for_it(client, outbox, fixed_clock, w, drain):
    """From an outside review: the policy ``feedback_after_visit: false`` was stored and never read."""
    cid = w["a"]["clinic_id"]
    policies = ok(jpost(client, f"/clinics/{cid}", token=w["admin_a"]["token"], method="get"))["policies"]
    ok(jpost(client, f"/clinics/{cid}/policies", {**{k: v for k, v in policies.items() if k != "version"},
                                                  "feedback_after_visit": False, "version": policies.get("version")},
             token=w["admin_a"]["token"], method="put"))
    completed_visit(client, outbox, fixed_clock, w, drain)
    patient = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    inbox = body(jpost(client, "/me/inbox", token=patient, method="get"))
    assert [i for i in inbox["items"] if i["kind"] == "feedback_request"] == []
