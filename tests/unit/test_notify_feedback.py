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


def test_a_periods_answers_pages_by_the_clinics_local_days(client, outbox, fixed_clock, w):
    """240 answers over three months for two doctors in a Kaliningrad clinic (UTC+2): October's answers are
    exactly those given from 1 October 00:00 to 31 October 23:59 there, newest first, over pages of 50, for
    the clinic and for one doctor; a cursor of one period is refused on another; bad periods are 422s that
    name the field."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from chalicelib.core.ids import new_id
    from chalicelib.notify import store
    from chalicelib.notify.feedback import band

    cid, did, other = w["a"]["clinic_id"], w["doctor"]["user_id"], new_id()
    edges = [datetime(2026, 9, 30, 21, 59, tzinfo=timezone.utc), datetime(2026, 9, 30, 22, 0, tzinfo=timezone.utc),
             datetime(2026, 10, 31, 21, 59, tzinfo=timezone.utc), datetime(2026, 10, 31, 22, 0, tzinfo=timezone.utc)]
    moments = edges + [datetime(2026, 9, 1, 3, 0, tzinfo=timezone.utc) + timedelta(hours=9 * i) for i in range(236)]
    answers = []
    for i, at in enumerate(moments):
        a = {"booking_id": new_id(), "clinic_id": cid, "doctor_id": did if i % 3 else other, "score": i % 11,
             "band": band(i % 11), "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert store.add_feedback(a)
        answers.append(a)
    local = ZoneInfo("Europe/Kaliningrad")

    def october(a):
        return datetime.fromisoformat(a["created_at"].replace("Z", "+00:00")).astimezone(local).month == 10

    relogin(client, w["admin_a"], fixed_clock)
    tok = w["admin_a"]["token"]

    def all_pages(query):
        seen, cursor = [], None
        while True:
            more = f"&cursor={cursor}" if cursor else ""
            page = ok(jpost(client, f"/clinics/{cid}/feedback?{query}&limit=50{more}", token=tok, method="get"))
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return seen
            assert len(page["items"]) == 50

    period = "date_from=2026-10-01&date_to=2026-10-31"
    want = sorted((a for a in answers if october(a)), key=lambda a: a["created_at"], reverse=True)
    got = all_pages(period)
    assert len(want) > 50 and [i["booking_id"] for i in got] == [a["booking_id"] for a in want]
    ids = {i["booking_id"] for i in got}
    assert answers[1]["booking_id"] in ids and answers[2]["booking_id"] in ids  # 00:00 on the 1st, 23:59 on the 31st
    assert answers[0]["booking_id"] not in ids and answers[3]["booking_id"] not in ids  # a minute outside each end
    mine = all_pages(f"{period}&doctor_id={did}")
    assert [i["booking_id"] for i in mine] == [a["booking_id"] for a in want if a["doctor_id"] == did]
    assert len(all_pages(f"doctor_id={did}")) == sum(a["doctor_id"] == did for a in answers)  # no period: all

    first = ok(jpost(client, f"/clinics/{cid}/feedback?{period}&limit=10", token=tok, method="get"))
    r = jpost(client, f"/clinics/{cid}/feedback?date_from=2026-09-01&date_to=2026-09-30&limit=10"
                      f"&cursor={first['next_cursor']}", token=tok, method="get")
    assert r.status_code == 400
    for query, field in (("date_from=2026-10-01", "date_to"), ("date_to=2026-10-31", "date_from"),
                         ("date_from=2026-10-31&date_to=2026-10-01", "date_to"),
                         ("date_from=2026-10-01T00:00&date_to=2026-10-31", "date_from"),
                         ("date_from=2025-01-01&date_to=2026-10-31", "date_to")):
        r = jpost(client, f"/clinics/{cid}/feedback?{query}", token=tok, method="get")
        assert r.status_code == 422 and body(r)["errors"][0]["field"] == field, (query, r.body)


def test_a_clinic_without_a_branch_reads_an_empty_period(client, outbox, fixed_clock, w):
    """A clinic just created (no branch, so no zone yet) asks for a period's feedback: an empty page, not a 5xx."""
    from tests.unit.clinic_setup import CLINIC

    relogin(client, w["admin_b"], fixed_clock)
    cid = ok(jpost(client, "/clinics", CLINIC, token=w["admin_b"]["token"]), 201)["clinic_id"]
    page = ok(jpost(client, f"/clinics/{cid}/feedback?date_from=2026-11-01&date_to=2026-11-30",
                    token=w["admin_b"]["token"], method="get"))
    assert page["items"] == [] and page["next_cursor"] is None and page["clinic"]["answers"] == 0
