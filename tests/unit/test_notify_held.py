"""A message quiet hours held is not sent in the morning if its visit lapsed, was cancelled or moved meanwhile;
a visit given to another doctor tells its patient."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib import bootstrap
from tests.conftest import jpost, log_in
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import ok, world
from tests.unit.notify_setup import fcm_token, register

UTC = timezone.utc


@pytest.fixture
def w(fcm, client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def test_a_held_message_about_a_visit_cancelled_meanwhile_is_never_sent(fcm, client, outbox, fixed_clock, w,
                                                                        drain):
    free = slots(client, w)
    gone = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    kept = ok(book(client, w, w["patient"]["token"], free[2]["start"]), 201)
    drain()
    tok = fcm_token()
    assert register(client, w["patient"]["token"], tok, time_zone="Asia/Sakhalin").status_code == 201
    from chalicelib.booking import store as bstore

    pid = bstore.get_booking(gone["booking_id"])["patient_id"]
    svc = bootstrap.notify()
    fixed_clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # midnight on Sakhalin: quiet hours
    for b in (gone, kept):
        item = bstore.get_booking(b["booking_id"])
        assert svc.send(pid, "rescheduled", f"held:{b['booking_id']}",
                        {"start_utc": item["start_utc"], "time_zone": item["time_zone"]},
                        link=f"booking/{b['booking_id']}") == "held"
    again = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    ok(jpost(client, f"/bookings/{gone['booking_id']}/cancel", {}, token=again))
    fcm.sent.clear()
    fixed_clock.set(datetime(2026, 11, 24, 21, 0, tzinfo=UTC))  # 08:00 on Sakhalin
    assert svc.release_held(fixed_clock.now()) == {"sent": 1, "failed": 0, "lapsed": 1}
    assert [m["data"]["link"] for _, m in fcm.sent] == [f"booking/{kept['booking_id']}"]
    fixed_clock.set(datetime(2026, 11, 24, 21, 10, tzinfo=UTC))
    assert svc.release_held(fixed_clock.now()) == {"sent": 0, "failed": 0, "lapsed": 0}  # neither comes back


def test_a_visit_given_to_another_doctor_tells_its_patient(fcm, client, outbox, fixed_clock, w, drain):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    drain()
    from chalicelib.booking import store as bstore

    item = bstore.get_booking(b["booking_id"])
    before = len(outbox.to(w["patient"]["phone"]))
    (name, handler), = [h for h in bootstrap.outbox().handlers["booking.reassigned"] if h[0] == "notify_reassigned"]
    event = {"event_id": "01M8VGT7BMQQJDNM5NSWGZ7PT3", "kind": "booking.reassigned",
             "data": {**{k: item[k] for k in ("booking_id", "patient_id", "clinic_id", "start_utc", "time_zone")},
                      "doctor_id": "01M8VGT7BMQQJDNM5NSWGZ7PT4", "from_doctor_id": item["doctor_id"]}}
    handler(event)
    handler(event)  # delivered twice: told once
    told = outbox.to(w["patient"]["phone"])[before:]
    assert len(told) == 1 and "with another doctor" in told[0] and "(Europe/Kaliningrad, UTC+02:00)" in told[0]
