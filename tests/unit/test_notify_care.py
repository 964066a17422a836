"""Preparation the day before, recalls N days after a completed visit (unless booked again), follow-ups from a
signed conclusion: each on the clinic's wall clock, from its own sparse due index, sent once."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from chalicelib import bootstrap
from chalicelib.notify import care
from tests.conftest import body, jpost, relogin
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import ok, world

UTC = timezone.utc


@pytest.mark.parametrize("start, zone, expected", [
    # a visit on Monday 30 Nov: instructions at 12:00 local on Sunday
    ("2026-11-30T07:00:00Z", "Europe/Kaliningrad", "2026-11-29T10:00:00+00:00"),
    ("2026-11-29T22:00:00Z", "Asia/Sakhalin", "2026-11-29T01:00:00+00:00"),  # Mon 09:00 +11 -> Sun 12:00 +11
    # Berlin, Sunday 25 Oct 2026 (the autumn change): Saturday 12:00 CEST is 10:00 UTC
    ("2026-10-25T08:00:00Z", "Europe/Berlin", "2026-10-24T10:00:00+00:00"),
    # Monday 30 Mar after the spring change: Sunday 12:00 CEST is 10:00 UTC; Sunday 29 Mar's visit: Sat 12:00 CET
    ("2026-03-30T07:00:00Z", "Europe/Berlin", "2026-03-29T10:00:00+00:00"),
    ("2026-03-29T07:00:00Z", "Europe/Berlin", "2026-03-28T11:00:00+00:00"),
])
def test_preparation_falls_at_noon_the_local_day_before(start, zone, expected):
    assert care.preparation_due(start, zone, datetime(2026, 1, 1, tzinfo=UTC)).isoformat() == expected


def test_preparation_booked_late_goes_right_away_and_never_after_the_start():
    now = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    assert care.preparation_due("2026-11-30T07:00:00Z", "Europe/Kaliningrad", now) == now
    assert care.preparation_due("2026-11-30T04:00:00Z", "Europe/Kaliningrad", now) is None


@pytest.mark.parametrize("start, zone, days, expected", [
    ("2026-11-30T07:00:00Z", "Europe/Kaliningrad", 180, "2027-05-29T08:00:00+00:00"),  # 10:00 +02
    ("2026-11-29T22:00:00Z", "Asia/Sakhalin", 180, "2027-05-28T23:00:00+00:00"),  # local day 30 Nov, 10:00 +11
    ("2026-10-20T08:00:00Z", "Europe/Berlin", 10, "2026-10-30T09:00:00+00:00"),  # CEST visit, CET recall
])
def test_recalls_fall_at_ten_local_n_days_after_the_visit(start, zone, days, expected):
    assert care.recall_due(start, zone, days).isoformat() == expected


def test_an_observation_period_counts_months_from_the_local_visit_day():
    visit = {"start_utc": "2026-01-30T22:00:00Z", "time_zone": "Asia/Sakhalin"}  # 31 Jan local
    assert care.follow_up_day(visit, None, 1) == date(2026, 2, 28)
    assert care.follow_up_day(visit, "2026-06-01", None) == date(2026, 6, 1)


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def inbox_kinds(client, tok):
    return [i["kind"] for i in body(jpost(client, "/me/inbox", token=tok, method="get"))["items"]]


def test_preparation_goes_out_the_day_before_once_and_not_for_a_cancelled_visit(client, outbox, fixed_clock, w,
                                                                                drain):
    free = slots(client, w)
    kept = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    drain()
    phone = w["patient"]["phone"]
    before = len(outbox.to(phone))
    assert bootstrap.notify().send_due_care(datetime(2026, 11, 29, 9, 55, tzinfo=UTC))["sent"] == 0
    run = bootstrap.notify().send_due_care(datetime(2026, 11, 29, 10, 5, tzinfo=UTC))  # 12:05 in Kaliningrad
    assert run == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}
    told = outbox.to(phone)[before:]
    assert len(told) == 1 and "needs preparation" in told[0] and "(Europe/Kaliningrad, UTC+02:00)" in told[0]
    assert "metal" not in told[0] and "MRI" not in told[0]  # the instructions themselves stay in the app
    assert bootstrap.notify().send_due_care(datetime(2026, 11, 29, 10, 20, tzinfo=UTC))["due"] == 0
    assert len(outbox.to(phone)) == before + 1
    assert kept["booking_id"]


def test_a_cancelled_visit_gets_no_preparation(client, outbox, fixed_clock, w, drain):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    drain()
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    drain()
    run = bootstrap.notify().send_due_care(datetime(2026, 11, 29, 10, 5, tzinfo=UTC))
    assert run == {"due": 1, "sent": 0, "skipped": 1, "failed": 0}
    assert "preparation" not in inbox_kinds(client, w["patient"]["token"])


def complete(client, fixed_clock, w, drain, *bids):
    fixed_clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    relogin(client, w["doctor"], fixed_clock)
    for bid in bids:
        ok(jpost(client, f"/bookings/{bid}/complete", {}, token=w["doctor"]["token"]))
    drain()


def test_a_recall_comes_180_days_after_the_visit_unless_the_patient_booked_again(client, outbox, fixed_clock, w,
                                                                                  drain):
    from tests.unit.booking_setup import patient

    free = slots(client, w)
    first = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    other = patient(client, outbox, "+79130000009")
    second = ok(book(client, w, other["token"], free[1]["start"]), 201)
    drain()
    complete(client, fixed_clock, w, drain, first["booking_id"], second["booking_id"])
    items = care.due(datetime(2027, 5, 29, 8, 5, tzinfo=UTC))
    assert sorted(i["booking_id"] for i in items) == sorted([first["booking_id"], second["booking_id"]])
    # the rebooking: a booking item of the same service after the visit (written as booking writes it)
    from chalicelib.booking import store as bstore
    from chalicelib.core import db

    again = dict(bstore.get_booking(second["booking_id"]))
    again.update({"booking_id": "01M8VGT7BMQQJDNM5NSWGZ7PT9", "status": "confirmed",
                  "start_utc": "2027-06-07T07:00:00Z", "GSI1SK": "2027-06-07T07:00:00Z#01M8VGT7BMQQJDNM5NSWGZ7PT9",
                  "PK": bstore.booking_pk("01M8VGT7BMQQJDNM5NSWGZ7PT9")})
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(again))
    b1, b2 = len(outbox.to(w["patient"]["phone"])), len(outbox.to(other["phone"]))
    assert bootstrap.notify().send_due_care(datetime(2027, 5, 29, 7, 55, tzinfo=UTC))["due"] == 0
    run = bootstrap.notify().send_due_care(datetime(2027, 5, 29, 8, 5, tzinfo=UTC))  # 10:05 in Kaliningrad
    assert run == {"due": 2, "sent": 1, "skipped": 1, "failed": 0}
    # a recall is not "must arrive": without the app it waits in the inbox, never by SMS
    assert len(outbox.to(w["patient"]["phone"])) == b1 and len(outbox.to(other["phone"])) == b2
    from chalicelib.notify import store as nstore

    assert nstore.send_record(f"care:recall:{first['booking_id']}:{items[0]['due_at']}")["status"] == "delivered"
    assert nstore.send_record(f"care:recall:{second['booking_id']}:{items[0]['due_at']}") is None


def test_a_follow_up_comes_a_week_before_the_date_the_doctor_set(client, outbox, fixed_clock, w, drain):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    drain()
    complete(client, fixed_clock, w, drain, b["booking_id"])
    handler = dict(bootstrap.outbox().handlers["records.conclusion_signed"])["notify_follow_up"]  # (analytics' too)
    event = {"event_id": "e1", "kind": "records.conclusion_signed",
             "data": {"booking_id": b["booking_id"], "follow_up_date": "2027-01-15", "observation_months": None}}
    handler(event)
    handler(event)  # delivered twice: one item
    assert bootstrap.notify().send_due_care(datetime(2027, 1, 8, 7, 55, tzinfo=UTC))["due"] == 0
    run = bootstrap.notify().send_due_care(datetime(2027, 1, 8, 8, 5, tzinfo=UTC))  # 8 Jan 10:05 Kaliningrad
    assert run == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}
    # amended to no follow-up: nothing more is planned
    amended = dict(bootstrap.outbox().handlers["records.conclusion_amended"])["notify_follow_up"]  # (records' too)
    amended({"event_id": "e2", "kind": "records.conclusion_amended",
             "data": {"booking_id": b["booking_id"], "follow_up_date": None, "observation_months": None}})
    assert care.due(datetime(2027, 1, 8, 9, 0, tzinfo=UTC)) == []
