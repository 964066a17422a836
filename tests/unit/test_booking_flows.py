"""Waitlist, doctor invitations, telemedicine, the urgent queue, and time zones."""
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.bootstrap import booking as service
from tests.conftest import body, jpost, make_staff, relogin
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import SERVICE, invite_doctor, new_clinic, ok, world

NO_SPECIALTY = {k: v for k, v in SERVICE.items() if k != "specialty"}  # any doctor may give it


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def waitlist(client, w, p, day_from="2026-11-30", day_to="2026-12-06"):
    return ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": w["service_id"],
                                          "doctor_id": w["doctor"]["user_id"], "date_from": day_from,
                                          "date_to": day_to}, token=p["token"]), 201)


def my_offers(client, p):
    return [b for b in ok(jpost(client, "/me/bookings", token=p["token"], method="get"))["items"]
            if b["status"] == "offered"]


def test_freed_slot_goes_to_the_first_waiting_patient_then_the_next(client, outbox, fixed_clock, w, drain):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    first = patient(client, outbox, "+79130000001")
    second = patient(client, outbox, "+79130000002")
    waitlist(client, w, first)
    fixed_clock.advance(seconds=1)
    waitlist(client, w, second)
    ok(jpost(client, f"/bookings/{booked['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    assert my_offers(client, first) == []  # the request only cancels; the offer is the event's follow-up
    drain()
    offers = my_offers(client, first)
    assert len(offers) == 1 and offers[0]["start"]["utc"] == start
    assert "doctor you waited for" in outbox.to(first["phone"])[-1] or "листа ожидания" in outbox.to(first["phone"])[-1]
    assert my_offers(client, second) == []
    # nobody else can take the time while it is offered
    assert start not in [s["start"] for s in slots(client, w)]
    assert book(client, w, second["token"], start).status_code == 409
    # unanswered for 15 minutes: the offer lapses and passes to the next patient
    fixed_clock.advance(minutes=16)
    assert service().expire_due_holds() == 1
    drain()
    relogin_patient = [p for p in (first, second)]
    for p in relogin_patient:
        r = jpost(client, "/auth/refresh", {"refresh_token": p["refresh"]})
        p.update(token=body(r)["access_token"], refresh=body(r)["refresh_token"])
    offers = my_offers(client, second)
    assert len(offers) == 1
    accepted = ok(jpost(client, f"/bookings/{offers[0]['booking_id']}/accept", {}, token=second["token"]))
    assert accepted["status"] == "confirmed"
    drain()
    assert [x["status"] for x in ok(jpost(client, "/me/waitlist", token=second["token"], method="get"))["items"]] == \
        ["booked"]


def test_declining_an_offer_passes_it_on(client, outbox, fixed_clock, w, drain):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    first = patient(client, outbox, "+79130000011")
    second = patient(client, outbox, "+79130000012")
    waitlist(client, w, first)
    fixed_clock.advance(seconds=1)
    waitlist(client, w, second)
    ok(jpost(client, f"/bookings/{booked['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    drain()
    offer = my_offers(client, first)[0]
    assert jpost(client, f"/bookings/{offer['booking_id']}/accept", {}, token=second["token"]).status_code == 404
    ok(jpost(client, f"/bookings/{offer['booking_id']}/decline", {}, token=first["token"]))
    drain()
    assert len(my_offers(client, second)) == 1


def test_waitlist_outside_the_dates_gets_nothing_and_can_be_left(client, outbox, w, drain):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    later = patient(client, outbox, "+79130000021")
    entry = waitlist(client, w, later, "2026-12-07", "2026-12-20")
    ok(jpost(client, f"/bookings/{booked['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    drain()
    assert my_offers(client, later) == []
    assert start in [s["start"] for s in slots(client, w)]
    assert jpost(client, f"/waitlist/{entry['waitlist_id']}", token=later["token"], method="delete").status_code == 204
    assert ok(jpost(client, "/me/waitlist", token=later["token"], method="get"))["items"] == []


def test_doctor_invites_their_patient_in_one_action(client, outbox, fixed_clock, w, drain):
    free = slots(client, w)
    first = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    me = body(jpost(client, "/me", token=w["patient"]["token"], method="get"))
    stranger = patient(client, outbox, "+79130000031")
    invite = {"patient_id": stranger["user_id"], "clinic_id": w["a"]["clinic_id"], "service_id": w["service_id"],
              "start": free[3]["start"], "note": "Контрольное МРТ через полгода"}
    r = jpost(client, "/visit-invitations", invite, token=w["doctor"]["token"])
    assert r.status_code == 404  # not one of this doctor's patients
    invite["patient_id"] = me["user_id"]
    assert jpost(client, "/visit-invitations", invite, token=w["admin_a"]["token"]).status_code == 403
    proposed = ok(jpost(client, "/visit-invitations", invite, token=w["doctor"]["token"]), 201)
    assert proposed["status"] == "proposed" and proposed["note"].startswith("Контрольное")
    drain()
    assert "invites you" in outbox.to(w["patient"]["phone"])[-1] or "приглашает" in outbox.to(w["patient"]["phone"])[-1]
    assert free[3]["start"] not in [s["start"] for s in slots(client, w)]
    accepted = ok(jpost(client, f"/bookings/{proposed['booking_id']}/accept", {}, token=w["patient"]["token"]))
    assert accepted["status"] == "confirmed"
    assert first["booking_id"] != accepted["booking_id"]


def video_world(client, outbox, fixed_clock, w, modality):
    svc = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/services",
                   {**SERVICE, "name": {"ru": "Онлайн", "en": "Online"}, "modality": modality, "resource_kinds": [],
                    "duration_minutes": 30, "preparation": None} | {}, token=w["admin_a"]["token"]), 201)
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": modality, "weekday": "wed", "start": "18:00",
              "end": "20:00"}, token=w["admin_a"]["token"]), 201)
    start = slots(client, w, day="2026-12-02", service_id=svc["service_id"])[0]["start"]
    return ok(book(client, w, w["patient"]["token"], start, service_id=svc["service_id"]), 201)


def test_video_join_details_for_the_two_participants_in_the_window(client, outbox, fixed_clock, w):
    b = video_world(client, outbox, fixed_clock, w, "video")
    path = f"/bookings/{b['booking_id']}/video"
    r = jpost(client, path, token=w["patient"]["token"], method="get")
    assert r.status_code == 409 and body(r)["code"] == "video_not_open_yet"
    start = datetime.fromisoformat(b["start"]["utc"].replace("Z", "+00:00"))
    fixed_clock.set(start - timedelta(minutes=9))
    r = jpost(client, "/auth/refresh", {"refresh_token": w["patient"]["refresh"]})
    w["patient"]["token"] = body(r)["access_token"]
    relogin(client, w["doctor"], fixed_clock)
    relogin(client, w["admin_a"], fixed_clock)
    mine = ok(jpost(client, path, token=w["patient"]["token"], method="get"))
    doctors = ok(jpost(client, path, token=w["doctor"]["token"], method="get"))
    assert mine["meeting_id"] == doctors["meeting_id"]
    assert mine["attendee"]["join_token"] != doctors["attendee"]["join_token"]
    assert jpost(client, path, token=w["admin_a"]["token"], method="get").status_code == 404
    fixed_clock.set(start + timedelta(minutes=31))
    relogin(client, w["doctor"], fixed_clock)
    r = jpost(client, path, token=w["doctor"]["token"], method="get")
    assert r.status_code == 409 and body(r)["code"] == "video_closed"


def test_chat_thread_is_for_patient_and_doctor_only(client, outbox, fixed_clock, w):
    b = video_world(client, outbox, fixed_clock, w, "chat")
    path = f"/bookings/{b['booking_id']}/messages"
    for i in range(3):
        ok(jpost(client, path, {"text": f"Вопрос {i}"}, token=w["patient"]["token"]), 201)
    ok(jpost(client, path, {"text": "Ответ врача"}, token=w["doctor"]["token"]), 201)
    page = ok(jpost(client, path + "?limit=2", token=w["doctor"]["token"], method="get"))
    assert [m["text"] for m in page["items"]] == ["Вопрос 0", "Вопрос 1"] and page["next_cursor"]
    rest = ok(jpost(client, path + f"?limit=2&cursor={page['next_cursor']}", token=w["patient"]["token"],
                    method="get"))
    assert [m["author_role"] for m in rest["items"]] == ["patient", "doctor"]
    stranger = patient(client, outbox, "+79130000041")
    assert jpost(client, path, token=stranger["token"], method="get").status_code == 404
    assert jpost(client, path, token=w["admin_a"]["token"], method="get").status_code == 404
    assert jpost(client, path, {"text": ""}, token=w["patient"]["token"]).status_code == 422


def test_urgent_queue_position_wait_and_the_duty_doctor(client, outbox, fixed_clock, w):
    shift = {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": "2026-11-24T08:00",
             "ends_at": "2026-11-24T20:00"}
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/duty-shifts", shift,
             token=w["admin_a"]["token"]), 201)
    patients = [w["patient"], patient(client, outbox, "+79130000051"), patient(client, outbox, "+79130000052")]
    for i, p in enumerate(patients):
        joined = ok(jpost(client, "/urgent/cardiologist/queue", {"modality": "video", "complaint": "Давит в груди"},
                          token=p["token"]), 201)
        # one duty doctor, free now: the first waits for nobody, each next one a consultation more
        assert joined["position"] == i + 1 and joined["estimated_wait_minutes"] == i * 30
    r = jpost(client, "/urgent/cardiologist/queue", {}, token=patients[0]["token"])
    assert r.status_code == 409 and body(r)["code"] == "already_queued"
    assert jpost(client, "/urgent/cardiologist/queue/me", token=patients[1]["token"], method="delete").status_code == 204
    assert ok(jpost(client, "/urgent/cardiologist/queue/me", token=patients[2]["token"],
                    method="get"))["position"] == 2
    taken = ok(jpost(client, "/urgent/cardiologist/take", {}, token=w["doctor"]["token"]))
    assert taken["patient_id"] == body(jpost(client, "/me", token=patients[0]["token"], method="get"))["user_id"]
    assert taken["booking"]["service"]["modality"] == "video" and taken["booking"]["status"] == "confirmed"
    status = ok(jpost(client, "/urgent/cardiologist/queue/me", token=patients[0]["token"], method="get"))
    assert status["status"] == "taken" and status["booking_id"] == taken["booking"]["booking_id"]
    assert ok(jpost(client, "/urgent/cardiologist/queue/me", token=patients[2]["token"],
                    method="get"))["position"] == 1
    # a doctor who is not on shift takes nobody
    other = make_staff(client, outbox, fixed_clock, "+79130000053", "doctor")
    r = jpost(client, "/urgent/cardiologist/take", {}, token=other["token"])
    assert r.status_code == 403 and body(r)["code"] == "not_on_shift"
    # the doctor is in that consultation: they take nobody else until it is over
    r = jpost(client, "/urgent/cardiologist/take", {}, token=w["doctor"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "doctor_busy"
    fixed_clock.advance(minutes=10)
    ok(jpost(client, f"/bookings/{taken['booking']['booking_id']}/complete", {}, token=w["doctor"]["token"]))
    ok(jpost(client, "/urgent/cardiologist/take", {}, token=w["doctor"]["token"]))
    r = jpost(client, "/urgent/cardiologist/take", {}, token=w["doctor"]["token"])
    assert r.status_code == 404 and body(r)["code"] == "queue_empty"
    # a taken patient joins the queue again later without leaving a queue they are no longer in
    again = ok(jpost(client, "/urgent/cardiologist/queue", {"modality": "video"}, token=patients[0]["token"]), 201)
    assert again["status"] == "waiting" and again["position"] == 1


def test_slots_in_kaliningrad_and_sakhalin_on_the_same_day(client, outbox, fixed_clock):
    from tests.conftest import make_platform_admin
    from tests.unit.clinic_setup import activate

    admin = make_staff(client, outbox, fixed_clock, "+79130000061", "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, "+79130000062", "doctor")
    platform = make_platform_admin(client, outbox, fixed_clock, "+79130000063")
    c = new_clinic(client, admin)
    cid = c["clinic_id"]
    east = ok(jpost(client, f"/clinics/{cid}/branches",
                    {"name": {"ru": "Сахалин", "en": "Sakhalin"}, "address": "ул. Ленина, 1", "city": "Южно-Сахалинск",
                     "time_zone": "Asia/Sakhalin"}, token=admin["token"]), 201)
    invite_doctor(client, outbox, admin, cid, doctor)
    svc = ok(jpost(client, f"/clinics/{cid}/services",
                   {**NO_SPECIALTY, "resource_kinds": [], "modality": "video", "duration_minutes": 60},
                   token=admin["token"]),
             201)
    # Sakhalin (UTC+11) 09:00-11:00 is 22:00-00:00 UTC the evening before; Kaliningrad (UTC+2) 09:00-11:00
    for bid in (east["branch_id"], c["branch_id"]):
        ok(jpost(client, f"/clinics/{cid}/doctors/{doctor['user_id']}/templates",
                 {"branch_id": bid, "modality": "video", "weekday": "mon", "start": "09:00", "end": "11:00"},
                 token=admin["token"]), 201)
    activate(client, admin, platform, cid)
    got = ok(client.http.get(f"/catalog/doctors/{doctor['user_id']}/slots?clinic_id={cid}"
                             f"&service_id={svc['service_id']}&date_from=2026-11-30&date_to=2026-11-30"))["items"]
    assert [(s["local"], s["start"]) for s in got] == [
        ("2026-11-30T09:00+11:00", "2026-11-29T22:00:00Z"), ("2026-11-30T10:00+11:00", "2026-11-29T23:00:00Z"),
        ("2026-11-30T09:00+02:00", "2026-11-30T07:00:00Z"), ("2026-11-30T10:00+02:00", "2026-11-30T08:00:00Z")]


def test_slots_keep_wall_time_across_a_dst_change(client, outbox, fixed_clock):
    """Berlin leaves summer time on Sunday 2026-10-25: Monday 09:00 local moves from 07:00 to 08:00 UTC."""
    from tests.conftest import make_platform_admin
    from tests.unit.clinic_setup import activate

    fixed_clock.set(datetime(2026, 10, 12, 6, 0, tzinfo=timezone.utc))
    admin = make_staff(client, outbox, fixed_clock, "+79130000071", "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, "+79130000072", "doctor")
    platform = make_platform_admin(client, outbox, fixed_clock, "+79130000073")
    c = new_clinic(client, admin, "Berlin", "Europe/Berlin")
    invite_doctor(client, outbox, admin, c["clinic_id"], doctor)
    svc = ok(jpost(client, f"/clinics/{c['clinic_id']}/services",
                   {**NO_SPECIALTY, "resource_kinds": [], "duration_minutes": 60}, token=admin["token"]), 201)
    ok(jpost(client, f"/clinics/{c['clinic_id']}/doctors/{doctor['user_id']}/templates",
             {"branch_id": c["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00",
              "end": "10:00"}, token=admin["token"]), 201)
    activate(client, admin, platform, c["clinic_id"])
    got = ok(client.http.get(f"/catalog/doctors/{doctor['user_id']}/slots?clinic_id={c['clinic_id']}"
                             f"&service_id={svc['service_id']}&date_from=2026-10-19&date_to=2026-10-26"))["items"]
    assert [(s["local"], s["start"]) for s in got] == [("2026-10-19T09:00+02:00", "2026-10-19T07:00:00Z"),
                                                      ("2026-10-26T09:00+01:00", "2026-10-26T08:00:00Z")]
