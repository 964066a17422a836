"""Booking as patients, doctors and clinics meet it."""
from datetime import datetime, timezone

import pytest

from chalicelib.core import db
from tests.conftest import body, jpost, make_staff
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import DOCTOR_PROFILE, SERVICE, invite_doctor, ok, world


def enable_payouts(w):
    """The clinic finished Stripe onboarding (the webhook path is tested with the clinic)."""
    from chalicelib.clinics import store

    clinic = store.get_clinic(w["a"]["clinic_id"])
    db.update_versioned(store.clinic_pk(clinic["clinic_id"]), "PROFILE",
                        {"payouts": {"charges_enabled": True, "status": "active"}}, clinic["version"])


def prepaid_service(client, w, **prepayment):
    return ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/services",
                    {**SERVICE, "name": {"ru": "Консультация", "en": "Consultation"}, "resource_kinds": [],
                     "duration_minutes": 30, "price": {"amount": 300000, "currency": "RUB"},
                     "prepayment": prepayment or {"kind": "none"}}, token=w["admin_a"]["token"]), 201)["service_id"]


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def test_slot_times_carry_zone_offset_and_utc(client, w):
    first = slots(client, w)[0]
    assert first["start"] == "2026-11-30T07:00:00Z" and first["local"] == "2026-11-30T09:00+02:00"
    assert first["time_zone"] == "Europe/Kaliningrad"


def test_slots_respect_minimum_notice_and_the_sixty_day_horizon(client, w, fixed_clock):
    fixed_clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=timezone.utc))  # Monday 10:30 in Kaliningrad
    from tests.conftest import relogin

    relogin(client, w["admin_a"], fixed_clock)
    starts = [s["local"][11:16] for s in slots(client, w)]
    assert starts == ["11:40", "12:20"]  # 11:00 is within the clinic's 60 minutes of notice
    r = client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w['a']['clinic_id']}"
                        f"&service_id={w['service_id']}&date_from=2026-12-01&date_to=2027-03-01")
    assert r.status_code == 422  # more than 60 days at once
    far = slots(client, w, day="2027-01-25", until="2027-02-05")
    assert all(s["start"] < "2027-01-30" for s in far)


def test_booking_claims_the_slot_once_and_says_what_to_prepare(client, outbox, w):
    free = slots(client, w)
    r = book(client, w, w["patient"]["token"], free[1]["start"])
    assert r.status_code == 201
    b = body(r)
    assert b["status"] == "confirmed" and b["start"]["local"] == "2026-11-30T09:40+02:00"
    assert b["service"]["preparation"]["ru"].startswith("Снимите") and "prepayment" not in b
    assert b["free_cancellation_until"] == "2026-11-29T07:40:00Z"
    other = patient(client, outbox, "+79120000001")
    r = book(client, w, other["token"], free[1]["start"])
    assert r.status_code == 409 and body(r)["code"] == "slot_taken"
    r = book(client, w, other["token"], "2026-11-30T07:10:00Z")  # inside the doctor's hours, not a slot start
    assert r.status_code == 409 and body(r)["code"] == "slot_unavailable"
    r = book(client, w, other["token"], "2026-11-30T09:40:00")  # no offset: ambiguous
    assert r.status_code == 422


def test_one_mri_is_never_booked_twice_even_with_two_doctors(client, outbox, fixed_clock, w):
    second = make_staff(client, outbox, fixed_clock, "+79120000010", "doctor")
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_a"], w["a"]["clinic_id"], second)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=second["token"], method="put"))  # a radiologist
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{second['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00",
              "end": "13:00"}, token=w["admin_a"]["token"]), 201)
    start = slots(client, w)[0]["start"]
    assert start in [s["start"] for s in slots(client, w, doctor_id=second["user_id"])]
    ok(book(client, w, w["patient"]["token"], start), 201)
    # the only MRI is busy, so the second doctor's 09:00 is not offered and cannot be booked
    assert start not in [s["start"] for s in slots(client, w, doctor_id=second["user_id"])]
    other = patient(client, outbox, "+79120000011")
    r = book(client, w, other["token"], start, doctor_id=second["user_id"])
    assert r.status_code == 409 and body(r)["code"] == "slot_taken"
    # a second MRI makes the time bookable again
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/branches/{w['a']['branch_id']}/resources",
             {"kind": "mri", "name": "MRI 3T"}, token=w["admin_a"]["token"]), 201)
    r = book(client, w, other["token"], start, doctor_id=second["user_id"])
    assert r.status_code == 201, r.body


def test_a_retried_request_creates_no_second_booking(client, w):
    start = slots(client, w)[0]["start"]
    first = book(client, w, w["patient"]["token"], start, key="retry-key-0001")
    again = book(client, w, w["patient"]["token"], start, key="retry-key-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert body(first)["booking_id"] == body(again)["booking_id"]
    mine = ok(jpost(client, "/me/bookings", token=w["patient"]["token"], method="get"))["items"]
    assert len(mine) == 1
    r = book(client, w, w["patient"]["token"], slots(client, w)[0]["start"], key="retry-key-0001")
    assert r.status_code == 422 and body(r)["code"] == "idempotency_key_reused"


def test_prepayment_hold_expires_and_frees_the_slot(client, w, fixed_clock):
    enable_payouts(w)
    sid = prepaid_service(client, w, kind="percent", percent=30)
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "tue", "start": "14:00",
              "end": "16:00"}, token=w["admin_a"]["token"]), 201)
    start = slots(client, w, day="2026-12-01", service_id=sid)[0]["start"]
    b = ok(book(client, w, w["patient"]["token"], start, service_id=sid), 201)
    assert b["status"] == "held"
    due = (fixed_clock.now().replace(microsecond=0) + __import__("datetime").timedelta(minutes=30))
    assert b["prepayment"] == {"amount": 90000, "currency": "RUB", "reason": "service",
                               "due_until": due.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert start not in [s["start"] for s in slots(client, w, day="2026-12-01", service_id=sid)]
    from chalicelib.bootstrap import booking as service

    fixed_clock.advance(minutes=29)
    assert service().expire_due_holds() == 0
    fixed_clock.advance(minutes=2)
    # even before the job runs, a lapsed hold no longer hides the slot
    assert start in [s["start"] for s in slots(client, w, day="2026-12-01", service_id=sid)]
    assert service().expire_due_holds() == 1
    from tests.conftest import relogin

    relogin(client, w["admin_a"], fixed_clock)
    got = ok(jpost(client, f"/bookings/{b['booking_id']}", token=w["admin_a"]["token"], method="get"))
    assert got["status"] == "expired"


def test_a_lapsed_hold_is_released_when_someone_books_its_time(client, outbox, w, fixed_clock):
    enable_payouts(w)
    sid = prepaid_service(client, w, kind="fixed", amount={"amount": 100000, "currency": "RUB"})
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "tue", "start": "14:00",
              "end": "16:00"}, token=w["admin_a"]["token"]), 201)
    start = slots(client, w, day="2026-12-01", service_id=sid)[0]["start"]
    ok(book(client, w, w["patient"]["token"], start, service_id=sid), 201)
    fixed_clock.advance(minutes=31)  # the job has not run yet
    other = patient(client, outbox, "+79120000021")
    r = book(client, w, other["token"], start, service_id=sid)
    assert r.status_code == 201, r.body


def test_clinic_confirms_a_payment_taken_at_the_desk(client, w):
    enable_payouts(w)
    sid = prepaid_service(client, w, kind="percent", percent=100)
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "tue", "start": "14:00",
              "end": "16:00"}, token=w["admin_a"]["token"]), 201)
    b = ok(book(client, w, w["patient"]["token"], slots(client, w, day="2026-12-01", service_id=sid)[0]["start"],
                service_id=sid), 201)
    r = jpost(client, f"/bookings/{b['booking_id']}/confirm-payment", {}, token=w["patient"]["token"])
    assert r.status_code == 403
    paid = ok(jpost(client, f"/bookings/{b['booking_id']}/confirm-payment", {}, token=w["admin_a"]["token"]))
    assert paid["status"] == "confirmed"
    r = jpost(client, f"/bookings/{b['booking_id']}/confirm-payment", {}, token=w["admin_a"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


def test_after_two_no_shows_the_next_booking_needs_prepayment(client, w, fixed_clock):
    enable_payouts(w)
    from tests.conftest import relogin

    for week in range(2):
        start = slots(client, w, day=["2026-11-30", "2026-12-07"][week])[0]["start"]
        b = ok(book(client, w, w["patient"]["token"], start), 201)
        assert b["status"] == "confirmed"
        fixed_clock.set(datetime.fromisoformat(start.replace("Z", "+00:00")))
        r = jpost(client, f"/bookings/{b['booking_id']}/no-show", {}, token=w["doctor"]["token"])
        if r.status_code == 401:
            relogin(client, w["doctor"], fixed_clock)
            r = jpost(client, f"/bookings/{b['booking_id']}/no-show", {}, token=w["doctor"]["token"])
        assert body(r)["status"] == "no_show"
        relogin_patient(client, w, fixed_clock)
    b = ok(book(client, w, w["patient"]["token"], slots(client, w, day="2026-12-14")[0]["start"]), 201)
    assert b["status"] == "held"
    assert b["prepayment"]["amount"] == 650000 and b["prepayment"]["reason"] == "no_show_rule"


def relogin_patient(client, w, fixed_clock):
    fixed_clock.advance(seconds=61)
    r = jpost(client, "/auth/refresh", {"refresh_token": w["patient"]["refresh"]})
    if r.status_code == 200:
        w["patient"].update(token=body(r)["access_token"], refresh=body(r)["refresh_token"])
        return
    raise AssertionError(r.body)


def test_cancellation_window_decides_what_is_late(client, w, fixed_clock):
    free = slots(client, w)
    early = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    late = ok(book(client, w, w["patient"]["token"], free[1]["start"]), 201)
    c = ok(jpost(client, f"/bookings/{early['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    assert c["status"] == "cancelled_by_patient" and c["cancellation"]["late"] is False
    assert free[0]["start"] in [s["start"] for s in slots(client, w)]  # the time is free again
    fixed_clock.set(datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc))  # less than 24 h before 07:40Z Monday
    relogin_patient(client, w, fixed_clock)
    c = ok(jpost(client, f"/bookings/{late['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    assert c["cancellation"]["late"] is True
    strikes = db.get(f"PATIENT#{c['patient_id']}", f"STRIKES#{w['a']['clinic_id']}")
    assert len(strikes["strikes"]) == 1


def test_the_clinic_cancels_with_a_reason(client, w):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    r = jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["admin_a"]["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "reason"
    c = ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {"reason": "Аппарат МРТ на обслуживании"},
                 token=w["admin_a"]["token"]))
    assert c["status"] == "cancelled_by_clinic" and c["cancellation"]["by"] == "clinic"
    r = jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"])
    assert r.status_code == 409


def test_reschedule_moves_atomically(client, outbox, w):
    free = slots(client, w)
    b = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    other = patient(client, outbox, "+79120000031")
    ok(book(client, w, other["token"], free[2]["start"]), 201)
    r = jpost(client, f"/bookings/{b['booking_id']}/reschedule", {"start": free[2]["start"]},
              token=w["patient"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "slot_taken"
    assert ok(jpost(client, f"/bookings/{b['booking_id']}", token=w["patient"]["token"],
                    method="get"))["start"]["utc"] == free[0]["start"]  # nothing moved
    moved = ok(jpost(client, f"/bookings/{b['booking_id']}/reschedule", {"start": free[1]["start"]},
                     token=w["patient"]["token"]))
    assert moved["start"]["utc"] == free[1]["start"] and moved["booking_id"] == b["booking_id"]
    now_free = [s["start"] for s in slots(client, w)]
    assert free[0]["start"] in now_free and free[1]["start"] not in now_free
    # a move by 40 minutes that overlaps its own old time is fine too
    back = ok(jpost(client, f"/bookings/{b['booking_id']}/reschedule", {"start": free[0]["start"]},
                    token=w["patient"]["token"]))
    assert back["start"]["utc"] == free[0]["start"]


def test_only_legal_transitions(client, w, fixed_clock):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    r = jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["doctor"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "too_early"
    assert jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["patient"]["token"]).status_code == 403
    fixed_clock.set(datetime(2026, 11, 30, 7, 5, tzinfo=timezone.utc))
    from tests.conftest import relogin

    relogin(client, w["doctor"], fixed_clock)
    assert ok(jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["doctor"]["token"]))["status"] == \
        "completed"
    r = jpost(client, f"/bookings/{b['booking_id']}/no-show", {}, token=w["doctor"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


def test_who_sees_a_booking(client, outbox, fixed_clock, w):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    path = f"/bookings/{b['booking_id']}"
    stranger = patient(client, outbox, "+79120000041")
    for token in (stranger["token"], w["admin_b"]["token"], w["platform"]["token"]):
        assert jpost(client, path, token=token, method="get").status_code == 404
    for token in (w["patient"]["token"], w["doctor"]["token"], w["admin_a"]["token"]):
        assert jpost(client, path, token=token, method="get").status_code == 200
    other_doctor = make_staff(client, outbox, fixed_clock, "+79120000042", "doctor")
    assert jpost(client, path, token=other_doctor["token"], method="get").status_code == 404
    assert jpost(client, path + "/cancel", {}, token=stranger["token"]).status_code == 404
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/calendar?date_from=2026-11-30&date_to=2026-11-30",
              token=w["admin_b"]["token"], method="get")
    assert r.status_code == 404
    assert jpost(client, "/me/agenda?date_from=2026-11-30&date_to=2026-11-30", token=w["patient"]["token"],
                 method="get").status_code == 403


def test_lists_and_calendars(client, outbox, w):
    free = slots(client, w)
    ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    other = patient(client, outbox, "+79120000051")
    ok(book(client, w, other["token"], free[1]["start"]), 201)
    mine = ok(jpost(client, "/me/bookings?when=upcoming", token=w["patient"]["token"], method="get"))["items"]
    assert [x["start"]["utc"] for x in mine] == [free[0]["start"]]
    assert ok(jpost(client, "/me/bookings?when=past", token=w["patient"]["token"], method="get"))["items"] == []
    agenda = ok(jpost(client, "/me/agenda?date_from=2026-11-30&date_to=2026-12-06", token=w["doctor"]["token"],
                      method="get"))["items"]
    assert len(agenda) == 2
    cal = f"/clinics/{w['a']['clinic_id']}/calendar?date_from=2026-11-30&date_to=2026-11-30"
    by_doctor = ok(jpost(client, cal + f"&doctor_id={w['doctor']['user_id']}", token=w["admin_a"]["token"],
                         method="get"))["items"]
    by_room = ok(jpost(client, cal + f"&resource_id={w['resource_id']}", token=w["admin_a"]["token"],
                       method="get"))["items"]
    assert len(by_doctor) == 2 and len(by_room) == 2


def test_visit_exports_as_ics_and_the_doctor_has_a_private_feed(client, w):
    import icalendar

    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    r = jpost(client, f"/bookings/{b['booking_id']}/ics", token=w["patient"]["token"], method="get")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/calendar")
    event = icalendar.Calendar.from_ical(r.body).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)
    assert "МРТ" in str(event.get("SUMMARY"))
    url = ok(jpost(client, "/me/calendar-feed", token=w["doctor"]["token"], method="get"))["url"]
    path = url[url.index("/calendar/"):]
    feed = client.http.get(path)
    assert feed.status_code == 200
    events = icalendar.Calendar.from_ical(feed.body).walk("VEVENT")
    assert len(events) == 1 and "МРТ" not in feed.body.decode()  # no medical detail in a feed URL
    assert client.http.get(path.replace(".ics", "x.ics")).status_code == 404


def test_booking_within_budget(client, w, ddb_calls):
    start = slots(client, w)[0]["start"]
    ddb_calls.reset()
    ok(book(client, w, w["patient"]["token"], start, key="budget-key-01"), 201)
    calls = [c for c in ddb_calls.calls]
    assert calls.count("TransactWriteItems") == 1
    reads = [c for c in calls if c in ("GetItem", "BatchGetItem", "Query")]
    # the authorizer's session check, then one transaction and two reads (issue 10): the doctor's schedule
    # (templates with the leave and extra hours of those days, one query) and the rest (one BatchGetItem)
    assert reads == ["GetItem", "Query", "BatchGetItem"], calls
    ddb_calls.reset()
    slots(client, w, day="2026-11-30", until="2026-12-13")
    assert [c for c in ddb_calls.calls if c == "Query"].__len__() <= 4 and "Scan" not in ddb_calls.calls


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00", "1999-12-31T10:00:00Z"])
def test_instants_out_of_range_are_a_clear_422(client, w, start):
    r = book(client, w, w["patient"]["token"], start)
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "start"


def test_clinic_calendar_filtered_by_doctor_with_no_visits(client, w):
    ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    cal = f"/clinics/{w['a']['clinic_id']}/calendar?date_from=2026-11-30&date_to=2026-12-06"
    other = "01JD6Q3D4R5T6V7W8X9Y0Z1A2B"
    assert ok(jpost(client, cal + f"&doctor_id={other}", token=w["admin_a"]["token"], method="get"))["items"] == []


def test_no_slots_answers_the_same_shape(client, w):
    r = client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w['a']['clinic_id']}"
                        f"&service_id={w['service_id']}&date_from=2026-12-05&date_to=2026-12-06")  # a weekend
    got = ok(r)
    assert got["items"] == [] and got["duration_minutes"] == 40 and got["modality"] == "in_person"


def test_agenda_takes_only_its_dates(client, w):
    r = jpost(client, "/me/agenda?date_from=2026-11-30&date_to=2026-12-06&doctor_id=01JD6Q3D4R5T6V7W8X9Y0Z1A2B",
              token=w["doctor"]["token"], method="get")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "doctor_id"
