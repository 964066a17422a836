"""Urgent consultations take the duty doctor's time like a booking, on DynamoDB Local: duty doctors taking
at once while patients book the same doctor never give one doctor two visits at a time."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from chalicelib.booking import models as bm
from chalicelib.booking import store as booking_store
from chalicelib.bootstrap import booking as booking_service
from chalicelib.core.errors import AppError
from chalicelib.core.ids import new_id
from chalicelib.core.web import Caller
from tests.conftest import jpost, make_staff
from tests.unit.clinic_setup import DOCTOR_PROFILE, invite_doctor, ok, world


def doctor_of(d):
    return Caller(user_id=d["user_id"], role="doctor", session_id="s", mfa="totp")


def a_patient():
    return Caller(user_id=new_id(), role="patient", session_id="s", mfa="sms")


def duty(client, w, doctor, starts, ends):
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{doctor['user_id']}/duty-shifts",
             {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": starts, "ends_at": ends},
             token=w["admin_a"]["token"]), 201)


def live_visits(did):
    return sorted((b["start_utc"], b["end_utc"], b["kind"], b["patient_id"])
                  for b in booking_store.agenda(did, "2026-11-29", "2026-12-01") if b["status"] in bm.ACTIVE)


def no_overlap(visits):
    return all(a[1] <= b[0] for a, b in zip(visits, visits[1:]))


def test_duty_doctors_taking_at_once_while_patients_book_the_same_doctor(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid = w["a"]["clinic_id"]
    ok(jpost(client, f"/clinics/{cid}/policies", {"minimum_notice_minutes": 0}, token=w["admin_a"]["token"],
             method="put"))
    second = make_staff(client, outbox, fixed_clock, "+79110000007", "doctor")
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_a"], cid, second)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=second["token"], method="put"))
    # Monday 30 November: duty 07:00-09:00 Kaliningrad (05:00-07:00 UTC); the first doctor's MRI list from 07:00 UTC
    for d in (w["doctor"], second):
        duty(client, w, d, "2026-11-30T07:00", "2026-11-30T09:00")
    svc = booking_service()
    for _ in range(6):
        svc.join_queue(a_patient(), "cardiologist", bm.UrgentJoin())
    fixed_clock.set(datetime(2026, 11, 30, 6, 40, tzinfo=timezone.utc))  # a consultation now runs to 07:10
    mri = bm.BookingIn(clinic_id=cid, service_id=w["service_id"], doctor_id=w["doctor"]["user_id"],
                       start="2026-11-30T07:00:00Z")

    def take(d):
        try:
            return "took", svc.take_next(doctor_of(d), "cardiologist")["booking"]["booking_id"]
        except AppError as exc:
            return "take", exc.code

    def book():
        try:
            return "booked", svc.book(a_patient(), mri, None)[0]["booking_id"]
        except AppError as exc:
            return "book", exc.code

    calls = [lambda: take(w["doctor"]), lambda: take(second), book] * 4
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(lambda f: f(), calls))
    first, other = live_visits(w["doctor"]["user_id"]), live_visits(second["user_id"])
    # each doctor holds exactly one visit now: the first either the consultation or the MRI, never both
    assert len(first) == 1 and len(other) == 1, (results, first, other)
    assert other[0][2] == "urgent"
    assert {code for kind, code in results if kind in ("take", "book")} <= {"doctor_busy", "slot_taken"}, results
    assert len({v[3] for v in first + other}) == 2  # two different patients
    # the free slots agree: 07:00 is gone for the first doctor
    free = svc.free_slots(w["doctor"]["user_id"], bm.SlotsQuery(clinic_id=cid, service_id=w["service_id"],
                                                                 date_from="2026-11-30", date_to="2026-11-30"))
    assert "2026-11-30T07:00:00Z" not in [s["start"] for s in free["items"]]


def test_the_estimated_wait_counts_the_duty_doctors_real_free_time(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    duty(client, w, w["doctor"], "2026-11-30T07:00", "2026-11-30T09:00")
    svc = booking_service()
    queued = [a_patient() for _ in range(3)]
    for p in queued:
        svc.join_queue(p, "cardiologist", bm.UrgentJoin())
    fixed_clock.set(datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc))
    assert [svc.queue_status(p, "cardiologist")["estimated_wait_minutes"] for p in queued] == [0, 30, 60]
    svc.take_next(doctor_of(w["doctor"]), "cardiologist")  # the first patient, 05:00-05:30
    # the doctor is busy until 05:30: the next patient waits for that, the one after a consultation more
    assert [svc.queue_status(p, "cardiologist")["estimated_wait_minutes"] for p in queued[1:]] == [30, 60]
    fixed_clock.set(datetime(2026, 11, 30, 5, 20, tzinfo=timezone.utc))
    assert svc.queue_status(queued[1], "cardiologist")["estimated_wait_minutes"] == 10
    # a taken patient may join again: no "leave" of a queue they are no longer in
    again = svc.join_queue(queued[0], "cardiologist", bm.UrgentJoin())
    assert again["status"] == "waiting" and again["position"] == 3


def test_a_duty_doctor_on_their_own_leave_or_leaving_the_clinic_takes_nobody(client, outbox, fixed_clock):
    """From an outside review: a doctor whose own leave covered today, or whose removal from the shift's clinic
    had begun (the shifts are deleted after), still took patients from the urgent queue."""
    from chalicelib.clinics import store as clinic_store
    from chalicelib.core import db

    w = world(client, outbox, fixed_clock)
    cid, did = w["a"]["clinic_id"], w["doctor"]["user_id"]
    duty(client, w, w["doctor"], "2026-11-30T07:00", "2026-11-30T09:00")
    svc = booking_service()
    patient = a_patient()
    svc.join_queue(patient, "cardiologist", bm.UrgentJoin())
    # the doctor enters their own leave for that Monday in the companion app (it applies in every clinic)
    leave = ok(jpost(client, "/me/schedule/leave", {"date_from": "2026-11-30", "date_until": "2026-11-30"},
                     token=w["doctor"]["token"]), 201)
    fixed_clock.set(datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc))
    try:
        svc.take_next(doctor_of(w["doctor"]), "cardiologist")
        raise AssertionError("a doctor on leave took a patient from the urgent queue")
    except AppError as exc:
        assert exc.code == "not_on_shift" and "leave" in (exc.detail or "")
    assert live_visits(did) == []
    # back from leave: the same patient is taken
    from chalicelib.bootstrap import clinics as clinics_service

    clinics_service().delete_my_leave(doctor_of(w["doctor"]), leave["item_id"])  # (the app's token expired by now)
    svc.take_next(doctor_of(w["doctor"]), "cardiologist")
    assert [v[3] for v in live_visits(did)] == [patient.user_id]
    # the clinic begins removing the doctor; the shift is still there (its cleanup comes after)
    svc.join_queue(a_patient(), "cardiologist", bm.UrgentJoin())
    fixed_clock.set(datetime(2026, 11, 30, 6, 45, tzinfo=timezone.utc))
    member = clinic_store.get_membership(cid, did)
    clinic_store.mark_doctor_removing(db.Tx(), member, "cancel", int(fixed_clock.now().timestamp())).commit()
    try:
        svc.take_next(doctor_of(w["doctor"]), "cardiologist")
        raise AssertionError("a doctor being removed from the clinic took a patient on its shift")
    except AppError as exc:
        assert exc.code == "not_on_shift"
    assert len(live_visits(did)) == 1
