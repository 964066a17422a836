"""One patient is never in two places at once, and a clinic's per-patient limits hold, both enforced in
the booking transaction: proven with one patient's parallel requests against DynamoDB Local, across two
doctors in two clinics."""
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from chalicelib.booking import models as bm
from chalicelib.booking import store as booking_store
from chalicelib.bootstrap import booking as booking_service
from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from tests.conftest import body, jpost
from tests.unit.booking_setup import MONDAY, booking_in, patient, two_clinics
from tests.unit.clinic_setup import ok

AT_SEVEN = f"{MONDAY}T07:00:00Z"  # 09:00 in Kaliningrad (clinic A), 10:00 in Moscow (clinic B)


def me(p):
    return Caller(user_id=p["user_id"], role="patient", session_id="s", mfa="sms")


def race(calls):
    """Run every call at once; each answers a booking id or the problem code it raised."""
    def run(fn):
        try:
            return fn()[0]["booking_id"]
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def live(pid):
    return [b for b in booking_store.patient_visits(pid, "2026-11-24", "2027-01-31") if b["status"] in bm.ACTIVE]


def test_one_patient_racing_two_doctors_in_two_clinics_gets_one_visit(client, outbox, fixed_clock):
    w = two_clinics(client, outbox, fixed_clock)
    p = patient(client, outbox, "+79140000001")
    svc = booking_service()
    # the same instant with both doctors, and overlapping half-hours (07:00 with B, 07:15 is not on A's grid:
    # A's 07:30 does not overlap 07:00-07:30), eight requests at once
    reqs = [booking_in(w, "a" if i % 2 else "b", AT_SEVEN) for i in range(8)]
    results = race([lambda r=r: svc.book(me(p), r, None) for r in reqs])
    winners = [r for r in results if r not in ("patient_busy", "slot_taken")]
    assert len(winners) == 1, results
    assert "patient_busy" in results, results  # the other doctor was free: the patient was not
    visits = live(p["user_id"])
    assert [v["booking_id"] for v in visits] == winners
    # through HTTP the other doctor's same time is a 409 naming the rule
    other = "b" if visits[0]["clinic_id"] == w["a"]["clinic_id"] else "a"
    r = jpost(client, "/bookings", booking_in(w, other, AT_SEVEN).model_dump(exclude_none=True), token=p["token"])
    assert r.status_code == 409 and body(r)["code"] == "patient_busy", r.body
    # another patient takes that doctor's time at once: it was never the doctor who was busy
    q = patient(client, outbox, "+79140000002")
    ok(jpost(client, "/bookings", booking_in(w, other, AT_SEVEN).model_dump(exclude_none=True), token=q["token"]),
       201)


def test_cancel_and_reschedule_free_the_patients_time(client, outbox, fixed_clock):
    w = two_clinics(client, outbox, fixed_clock)
    p = patient(client, outbox, "+79140000003")
    first = ok(jpost(client, "/bookings", booking_in(w, "a", AT_SEVEN).model_dump(exclude_none=True),
                     token=p["token"]), 201)
    ok(jpost(client, f"/bookings/{first['booking_id']}/reschedule", {"start": f"{MONDAY}T08:00:00Z"},
             token=p["token"]))
    # 07:00 is free for the patient again; 08:00 is not
    seven = ok(jpost(client, "/bookings", booking_in(w, "b", AT_SEVEN).model_dump(exclude_none=True),
                     token=p["token"]), 201)
    r = jpost(client, "/bookings", booking_in(w, "b", f"{MONDAY}T08:00:00Z").model_dump(exclude_none=True),
              token=p["token"])
    assert r.status_code == 409 and body(r)["code"] == "patient_busy"
    ok(jpost(client, f"/bookings/{first['booking_id']}/cancel", {}, token=p["token"]))
    ok(jpost(client, "/bookings", booking_in(w, "b", f"{MONDAY}T08:00:00Z").model_dump(exclude_none=True),
             token=p["token"]), 201)
    assert len(live(p["user_id"])) == 2 and seven["status"] == "confirmed"


def _set_policies(client, w, **limits):
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/policies", limits, token=w["admin_a"]["token"], method="put"))


def test_a_clinics_per_day_limit_holds_against_one_patients_parallel_requests(client, outbox, fixed_clock):
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_visits_per_day=2)
    p = patient(client, outbox, "+79140000004")
    svc = booking_service()
    starts = [f"{MONDAY}T{7 + i // 2:02d}:{30 * (i % 2):02d}:00Z" for i in range(8)]  # 8 free half-hours
    results = race([lambda s=s: svc.book(me(p), booking_in(w, "a", s), None) for s in starts])
    won = [r for r in results if r != "visit_limit_per_day"]
    assert len(won) == 2 and len(live(p["user_id"])) == 2, results
    # every later request aims at a time nobody holds (the winners are random): a time the doctor still has
    # free is refused by the day's limit, not by the slot
    start_of = {r: s for r, s in zip(results, starts)}
    free = [s for s in starts if s not in {start_of[b] for b in won}]
    r = jpost(client, "/bookings", booking_in(w, "a", free[0]).model_dump(exclude_none=True),
              token=p["token"], headers={"Accept-Language": "en"})
    assert r.status_code == 409 and body(r)["code"] == "visit_limit_per_day", r.body
    # the other clinic's limits are its own: the patient still books there that day
    ok(jpost(client, "/bookings", booking_in(w, "b", free[1]).model_dump(exclude_none=True), token=p["token"]), 201)
    # a cancelled visit no longer counts: the patient books another free time with clinic A
    ok(jpost(client, f"/bookings/{won[0]}/cancel", {}, token=p["token"]))
    ok(jpost(client, "/bookings", booking_in(w, "a", free[2]).model_dump(exclude_none=True),
             token=p["token"]), 201)
    assert len(live(p["user_id"])) == 3


def test_a_visit_that_has_ended_still_counts_among_the_days_visits(client, outbox, fixed_clock):
    """From an outside review: the day's counter dropped visits once they were over, so a patient with a
    limit of one visit a day booked a second one that afternoon."""
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_visits_per_day=1)
    p = patient(client, outbox, "+79140000014")
    svc = booking_service()
    svc.book(me(p), booking_in(w, "a", f"{MONDAY}T07:00:00Z"), None)
    first = live(p["user_id"])[0]
    fixed_clock.set(bm.parse_instant(first["end_utc"]) + timedelta(minutes=5))  # the morning visit is over
    try:
        svc.book(me(p), booking_in(w, "a", f"{MONDAY}T10:00:00Z"), None)
        raise AssertionError("a second visit on the same day was accepted once the first had ended")
    except AppError as exc:
        assert exc.code == "visit_limit_per_day"


def test_a_clinics_limit_of_upcoming_visits_with_one_doctor(client, outbox, fixed_clock):
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_future_visits_per_doctor=2)
    p = patient(client, outbox, "+79140000005")
    svc = booking_service()
    mondays = ["2026-11-30", "2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28"]
    results = race([lambda d=d: svc.book(me(p), booking_in(w, "a", f"{d}T07:00:00Z"), None) for d in mondays])
    assert sum(r != "visit_limit_per_doctor" for r in results) == 2, results
    # once a visit is over it is no longer upcoming: the patient may book one more
    first = min(live(p["user_id"]), key=lambda b: b["start_utc"])
    fixed_clock.set(bm.parse_instant(first["end_utc"]))
    booked = {v["start_utc"] for v in live(p["user_id"])}
    later = next(f"{d}T07:00:00Z" for d in mondays[2:] if f"{d}T07:00:00Z" not in booked)
    assert svc.book(me(p), booking_in(w, "a", later), None)[1]
    # two upcoming again: the next one is refused
    try:
        svc.book(me(p), booking_in(w, "a", "2027-01-04T07:00:00Z"), None)
        raise AssertionError("a third upcoming visit with the doctor was accepted")
    except AppError as exc:
        assert exc.code == "visit_limit_per_doctor"


def test_freed_time_is_offered_to_the_next_waiting_patient_when_the_first_is_elsewhere(client, outbox, fixed_clock,
                                                                                        drain):
    w = two_clinics(client, outbox, fixed_clock)
    holder, busy, free_one = (patient(client, outbox, f"+7914000030{i}") for i in range(3))
    visit = ok(jpost(client, "/bookings", booking_in(w, "a", AT_SEVEN).model_dump(exclude_none=True),
                     token=holder["token"]), 201)
    for p in (busy, free_one):  # the busy patient waits first
        ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": w["consult_a"],
                                       "doctor_id": w["doctor"]["user_id"], "date_from": MONDAY, "date_to": MONDAY},
                 token=p["token"]), 201)
    ok(jpost(client, "/bookings", booking_in(w, "b", AT_SEVEN).model_dump(exclude_none=True), token=busy["token"]),
       201)
    ok(jpost(client, f"/bookings/{visit['booking_id']}/cancel", {}, token=holder["token"]))
    drain()
    offered = [b for b in booking_store.agenda(w["doctor"]["user_id"], MONDAY, "2026-12-01")
               if b["status"] == "offered"]
    assert [b["patient_id"] for b in offered] == [free_one["user_id"]]
    assert all(b["status"] != "offered" for b in live(busy["user_id"]))


def test_a_retried_booking_at_the_limit_answers_the_booking_it_made(client, outbox, fixed_clock):
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_visits_per_day=1)
    p = patient(client, outbox, "+79140000006")
    req = booking_in(w, "a", AT_SEVEN).model_dump(exclude_none=True)
    first = ok(jpost(client, "/bookings", req, token=p["token"], headers={"Idempotency-Key": "limit-retry-1"}), 201)
    again = ok(jpost(client, "/bookings", req, token=p["token"], headers={"Idempotency-Key": "limit-retry-1"}))
    assert again["booking_id"] == first["booking_id"] and len(live(p["user_id"])) == 1


def test_a_doctors_invitation_counts_toward_the_clinics_limits_until_declined(client, outbox, fixed_clock):
    """From an outside review: invitations and waitlist offers hold a patient's time but were not counted, so a
    patient at the clinic's limit was still invited (and then booked past the limit)."""
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_future_visits_per_doctor=2)
    p = patient(client, outbox, "+79140000021")
    svc = booking_service()
    svc.book(me(p), booking_in(w, "a", AT_SEVEN), None)  # a confirmed visit: the doctor may invite them now
    doctor = Caller(user_id=w["doctor"]["user_id"], role="doctor", session_id="s", mfa="totp")
    invite = bm.InviteIn(patient_id=p["user_id"], clinic_id=w["a"]["clinic_id"], service_id=w["consult_a"],
                         start="2026-12-07T07:00:00Z")
    proposed = svc.invite(doctor, invite)
    assert proposed["status"] == "proposed"
    # the invitation holds the second place: the patient cannot book a third upcoming visit with the doctor
    try:
        svc.book(me(p), booking_in(w, "a", "2026-12-14T07:00:00Z"), None)
        raise AssertionError("a visit past the clinic's limit was booked beside an open invitation")
    except AppError as exc:
        assert exc.code == "visit_limit_per_doctor"
    # nor can the doctor invite them a second time
    try:
        svc.invite(doctor, invite.model_copy(update={"start": "2026-12-21T07:00:00Z"}))
        raise AssertionError("an invitation past the clinic's limit was sent")
    except AppError as exc:
        assert exc.code == "visit_limit_per_doctor"
    # declining gives the place back
    ok(jpost(client, f"/bookings/{proposed['booking_id']}/decline", {}, token=p["token"]))
    assert svc.book(me(p), booking_in(w, "a", "2026-12-14T07:00:00Z"), None)[1]


def test_freed_time_is_not_offered_to_a_waiting_patient_at_the_clinics_limit(client, outbox, fixed_clock, drain):
    w = two_clinics(client, outbox, fixed_clock)
    _set_policies(client, w, max_visits_per_day=1)
    holder, at_limit, free_one = (patient(client, outbox, f"+7914000031{i}") for i in range(3))
    visit = ok(jpost(client, "/bookings", booking_in(w, "a", AT_SEVEN).model_dump(exclude_none=True),
                     token=holder["token"]), 201)
    for p in (at_limit, free_one):  # the patient at the limit waits first
        ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": w["consult_a"],
                                       "doctor_id": w["doctor"]["user_id"], "date_from": MONDAY, "date_to": MONDAY},
                 token=p["token"]), 201)
    # the first waiting patient already has the day's one visit in this clinic (later that morning)
    ok(jpost(client, "/bookings", booking_in(w, "a", f"{MONDAY}T10:00:00Z").model_dump(exclude_none=True),
             token=at_limit["token"]), 201)
    ok(jpost(client, f"/bookings/{visit['booking_id']}/cancel", {}, token=holder["token"]))
    drain()
    offered = [b for b in booking_store.agenda(w["doctor"]["user_id"], MONDAY, "2026-12-01")
               if b["status"] == "offered"]
    assert [b["patient_id"] for b in offered] == [free_one["user_id"]]
