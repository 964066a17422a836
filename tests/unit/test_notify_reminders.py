"""Reminders before each visit: on the clinic's wall clock from Kaliningrad to Sakhalin and across a DST
change, sent once when due, never for a visit that was cancelled or moved."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import bootstrap
from chalicelib.notify.reminders import due_at
from tests.conftest import jpost
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import ok, world

UTC = timezone.utc


@pytest.mark.parametrize("start, zone, hours, expected", [
    # a visit at 09:00 local: the day-before reminder at 09:00 local the day before
    ("2026-11-30T07:00:00Z", "Europe/Kaliningrad", 24, "2026-11-29T07:00:00+00:00"),
    ("2026-11-29T22:00:00Z", "Asia/Sakhalin", 24, "2026-11-28T22:00:00+00:00"),
    # Berlin, Sunday 25 Oct 2026 09:00 CET (08:00 UTC): the day before, 09:00 CEST is 07:00 UTC (not 08:00)
    ("2026-10-25T08:00:00Z", "Europe/Berlin", 24, "2026-10-24T07:00:00+00:00"),
    # and in spring: Sunday 29 Mar 09:00 CEST (07:00 UTC) -> Saturday 28 Mar 09:00 CET (08:00 UTC)
    ("2026-03-29T07:00:00Z", "Europe/Berlin", 24, "2026-03-28T08:00:00+00:00"),
    # hours are exact
    ("2026-10-25T08:00:00Z", "Europe/Berlin", 2, "2026-10-25T06:00:00+00:00"),
    ("2026-11-29T22:00:00Z", "Asia/Sakhalin", 2, "2026-11-29T20:00:00+00:00"),
])
def test_reminders_fall_at_the_right_local_time(start, zone, hours, expected):
    assert due_at(start, zone, hours).isoformat() == expected


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def test_a_visit_is_reminded_24_and_2_hours_before_once_each(client, outbox, fixed_clock, w, drain):
    start = slots(client, w)[0]["start"]
    visit = ok(book(client, w, w["patient"]["token"], start), 201)
    drain()
    begins = datetime.fromisoformat(start.replace("Z", "+00:00"))
    phone = w["patient"]["phone"]
    svc = bootstrap.notify()
    sent = lambda: [t for t in outbox.to(phone) if "reminder" in t.lower()]  # noqa: E731

    fixed_clock.set(begins - timedelta(hours=24, minutes=1))
    assert svc.send_due_reminders(fixed_clock.now())["sent"] == 0 and sent() == []
    fixed_clock.set(begins - timedelta(hours=24))
    assert svc.send_due_reminders(fixed_clock.now()) == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}
    assert len(sent()) == 1 and "(Europe/Kaliningrad, UTC+02:00)" in sent()[0]
    fixed_clock.advance(minutes=5)
    assert svc.send_due_reminders(fixed_clock.now())["due"] == 0  # a second run sends nothing
    fixed_clock.set(begins - timedelta(hours=2) + timedelta(minutes=3))
    assert svc.send_due_reminders(fixed_clock.now()) == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}
    assert len(sent()) == 2
    from chalicelib.notify import store

    items, _ = store.inbox_page(visit["patient_id"], 10, None)  # (the access token has long expired)
    assert [i["kind"] for i in items].count("reminder") == 2
    assert items[0]["link"] == f"booking/{visit['booking_id']}"


def test_a_cancelled_visit_is_not_reminded_and_a_moved_one_at_its_new_time(client, outbox, fixed_clock, w, drain):
    free = slots(client, w)
    cancelled = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    moved = ok(book(client, w, w["patient"]["token"], free[1]["start"]), 201)
    drain()
    ok(jpost(client, f"/bookings/{cancelled['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    later = free[4]["start"]  # two hours later the same day
    r = jpost(client, f"/bookings/{moved['booking_id']}/reschedule", {"start": later, "version": moved["version"]},
              token=w["patient"]["token"])
    assert r.status_code == 200, r.body
    drain()
    svc = bootstrap.notify()
    first = datetime.fromisoformat(free[0]["start"].replace("Z", "+00:00"))
    fixed_clock.set(first - timedelta(hours=24) + timedelta(minutes=30))
    run = svc.send_due_reminders(fixed_clock.now())
    assert run["sent"] == 0  # the cancelled visit is skipped; the moved one's old reminder left the index
    assert run["skipped"] == 1
    new = datetime.fromisoformat(later.replace("Z", "+00:00"))
    fixed_clock.set(new - timedelta(hours=24))
    assert svc.send_due_reminders(fixed_clock.now()) == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}


def test_one_reminder_that_cannot_go_out_does_not_hold_back_the_others(client, outbox, fixed_clock, w, drain,
                                                                      monkeypatch):
    """From an outside review: the job stopped at the first reminder whose sending failed, so every later
    patient's reminder waited behind it until its catch-up window lapsed."""
    from tests.unit.booking_setup import patient

    other = patient(client, outbox, "+79160007788")
    first, second = slots(client, w)[:2]
    stuck = ok(book(client, w, w["patient"]["token"], first["start"]), 201)["patient_id"]
    ok(book(client, w, other["token"], second["start"]), 201)
    drain()
    svc = bootstrap.notify()
    real_send = svc.send

    def send(user_id, *args, **kwargs):
        if user_id == stuck:
            raise RuntimeError("the SMS provider is down for this number")
        return real_send(user_id, *args, **kwargs)

    monkeypatch.setattr(svc, "send", send)
    fixed_clock.set(datetime.fromisoformat(second["start"].replace("Z", "+00:00")) - timedelta(hours=2))
    run = svc.send_due_reminders(fixed_clock.now())
    assert run["failed"] >= 1 and run["sent"] >= 1
    assert any("reminder" in t.lower() for t in outbox.to(other["phone"]))
    monkeypatch.setattr(svc, "send", real_send)  # the provider is back: the stuck one goes out next run
    fixed_clock.advance(minutes=5)
    assert svc.send_due_reminders(fixed_clock.now())["sent"] >= 1
    assert any("reminder" in t.lower() for t in outbox.to(w["patient"]["phone"]))


def test_a_clinic_sets_its_own_reminder_offsets(client, outbox, fixed_clock, w, drain):
    cid, tok = w["a"]["clinic_id"], w["admin_a"]["token"]
    r = jpost(client, f"/clinics/{cid}/policies", {"reminder_hours": [2, 2]}, token=tok, method="put")
    assert r.status_code == 422 and "reminder_hours" in r.body.decode()
    r = jpost(client, f"/clinics/{cid}/policies", {"reminder_hours": [0]}, token=tok, method="put")
    assert r.status_code == 422 and "reminder_hours" in r.body.decode()
    ok(jpost(client, f"/clinics/{cid}/policies", {"reminder_hours": [3, 48]}, token=tok, method="put"))
    start = slots(client, w)[0]["start"]
    ok(book(client, w, w["patient"]["token"], start), 201)
    drain()
    from chalicelib.core import db

    items = db.ddb().scan(TableName=db.table_name())["Items"]  # test inspection only
    hours = sorted(int(i["hours"]["N"]) for i in items if i.get("type", {}).get("S") == "reminder")
    assert hours == [3, 48]
    begins = datetime.fromisoformat(start.replace("Z", "+00:00"))
    svc = bootstrap.notify()
    assert svc.send_due_reminders(begins - timedelta(hours=24))["due"] == 0  # no 24 h reminder here
    assert svc.send_due_reminders(begins - timedelta(hours=3)) == {"due": 1, "sent": 1, "skipped": 0, "failed": 0}
