"""A doctor shared by two clinics, through HTTP on DynamoDB Local: a clinic's leave is that clinic's only,
the doctor's own leave applies everywhere, each clinic sees the other's time only as "unavailable", and a
leave that hits visits lists them to the clinic, which may cancel them with a full refund."""
from tests.conftest import body, jpost
from tests.unit.booking_setup import booking_in, patient, two_clinics
from tests.unit.clinic_setup import invite_doctor, ok

MON, NEXT_MON = "2026-11-30", "2026-12-07"


def shared(client, outbox, fixed_clock):
    """two_clinics(), and the first doctor also works in B on Mondays 15:00-18:00 Moscow (12:00-15:00 UTC)."""
    w = two_clinics(client, outbox, fixed_clock)
    b = w["b"]["clinic_id"]
    invite_doctor(client, outbox, w["admin_b"], b, w["doctor"])
    ok(jpost(client, f"/clinics/{b}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["b"]["branch_id"], "modality": "in_person", "weekday": "mon", "start": "15:00",
              "end": "18:00"}, token=w["admin_b"]["token"]), 201)
    return w


def free(client, w, clinic, day):
    r = client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w[clinic]['clinic_id']}"
                        f"&service_id={w['consult_' + clinic]}&date_from={day}&date_to={day}")
    return [s["start"] for s in ok(r)["items"]]


def schedule(client, w, clinic):
    return ok(jpost(client, f"/clinics/{w[clinic]['clinic_id']}/doctors/{w['doctor']['user_id']}/schedule",
                    token=w[f"admin_{clinic}"]["token"], method="get"))


def test_a_clinics_leave_is_its_own_and_lists_the_visits_it_hits(client, outbox, fixed_clock):
    w = shared(client, outbox, fixed_clock)
    p = patient(client, outbox, "+79140000201")
    at_a = ok(jpost(client, "/bookings", booking_in(w, "a", f"{MON}T07:00:00Z", w["doctor"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    at_b = ok(jpost(client, "/bookings", booking_in(w, "b", f"{MON}T12:00:00Z", w["doctor"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    b_before = free(client, w, "b", MON)
    leave = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/exceptions",
                     {"kind": "leave", "date_from": MON, "date_until": MON}, token=w["admin_a"]["token"]), 201)
    assert [x["booking_id"] for x in leave["affected_bookings"]] == [at_a["booking_id"]]
    assert free(client, w, "a", MON) == []
    assert free(client, w, "b", MON) == b_before and b_before  # B's time is B's
    seen_by_b = schedule(client, w, "b")
    assert seen_by_b["exceptions"] == [] and seen_by_b["affected_bookings"] == []
    # B sees A's hours only as unavailable time, naming nothing of A
    assert {"start": f"{MON}T07:00:00Z", "end": f"{MON}T11:00:00Z"} in seen_by_b["unavailable"]
    assert all(set(u) == {"start", "end"} for u in seen_by_b["unavailable"])
    assert w["a"]["clinic_id"] not in str(seen_by_b)
    seen_by_a = schedule(client, w, "a")
    assert [x["booking_id"] for x in seen_by_a["affected_bookings"]] == [at_a["booking_id"]]
    assert {"start": f"{MON}T12:00:00Z", "end": f"{MON}T15:00:00Z"} in seen_by_a["unavailable"]
    # A cancels the visit its leave hit: a full refund is recorded for the payments feature
    gone = ok(jpost(client, f"/bookings/{at_a['booking_id']}/cancel", {"reason": "врач в отпуске"},
                    token=w["admin_a"]["token"]))
    assert gone["status"] == "cancelled_by_clinic" and gone["cancellation"]["refund"] == "full"
    assert schedule(client, w, "a")["affected_bookings"] == []
    assert ok(jpost(client, f"/bookings/{at_b['booking_id']}", token=p["token"], method="get"))["status"] == \
        "confirmed"


def test_the_doctors_own_leave_applies_in_every_clinic(client, outbox, fixed_clock):
    w = shared(client, outbox, fixed_clock)
    p = patient(client, outbox, "+79140000202")
    at_b = ok(jpost(client, "/bookings", booking_in(w, "b", f"{NEXT_MON}T12:30:00Z", w["doctor"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    assert free(client, w, "a", NEXT_MON) and free(client, w, "b", NEXT_MON)
    mine = ok(jpost(client, "/me/schedule/leave", {"date_from": NEXT_MON, "date_until": NEXT_MON, "note": "конференция"},
                    token=w["doctor"]["token"]), 201)
    assert mine["source"] == "doctor" and "clinic_id" not in mine
    assert [x["booking_id"] for x in mine["affected_bookings"]] == [at_b["booking_id"]]
    assert free(client, w, "a", NEXT_MON) == [] and free(client, w, "b", NEXT_MON) == []
    seen_by_b = schedule(client, w, "b")
    assert [x["item_id"] for x in seen_by_b["exceptions"]] == [mine["item_id"]]
    assert [x["booking_id"] for x in seen_by_b["affected_bookings"]] == [at_b["booking_id"]]
    # a clinic cannot delete the doctor's own leave; the doctor can
    r = jpost(client, f"/clinics/{w['b']['clinic_id']}/doctors/{w['doctor']['user_id']}/exceptions/{mine['item_id']}",
              token=w["admin_b"]["token"], method="delete")
    assert r.status_code == 404
    assert jpost(client, f"/me/schedule/leave/{mine['item_id']}", token=w["doctor"]["token"],
                 method="delete").status_code == 204
    assert free(client, w, "a", NEXT_MON)


def test_the_clinic_moves_a_visit_its_leave_hits_to_another_doctor(client, outbox, fixed_clock):
    w = shared(client, outbox, fixed_clock)
    b = w["b"]["clinic_id"]
    p = patient(client, outbox, "+79140000203")
    # the shared doctor's visit in B at 12:00; B's own doctor works 07:00-11:00 UTC there, so not at 12:00
    visit = ok(jpost(client, "/bookings", booking_in(w, "b", f"{MON}T12:00:00Z", w["doctor"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    path = f"/bookings/{visit['booking_id']}/reassign"
    r = jpost(client, path, {"doctor_id": w["second"]["user_id"]}, token=w["admin_b"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "slot_unavailable"
    ok(jpost(client, f"/clinics/{b}/doctors/{w['second']['user_id']}/exceptions",
             {"kind": "extra", "date_from": MON, "date_until": MON, "start": "14:00", "end": "16:00",
              "branch_id": w["b"]["branch_id"], "modality": "in_person"}, token=w["admin_b"]["token"]), 201)
    assert jpost(client, path, {"doctor_id": w["second"]["user_id"]}, token=p["token"]).status_code == 403
    moved = ok(jpost(client, path, {"doctor_id": w["second"]["user_id"], "version": visit["version"]},
                     token=w["admin_b"]["token"]))
    assert moved["doctor_id"] == w["second"]["user_id"] and moved["start"] == visit["start"]
    # the shared doctor's 12:00 in B is free again; the second doctor's is taken; the patient is still busy
    assert f"{MON}T12:00:00Z" in free(client, w, "b", MON)
    other = patient(client, outbox, "+79140000204")
    r = jpost(client, "/bookings", booking_in(w, "b", f"{MON}T12:00:00Z", w["second"]).model_dump(exclude_none=True),
              token=other["token"])
    assert r.status_code == 409 and body(r)["code"] == "slot_taken"
    r = jpost(client, "/bookings", booking_in(w, "b", f"{MON}T12:00:00Z", w["doctor"]).model_dump(exclude_none=True),
              token=p["token"])
    assert r.status_code == 409 and body(r)["code"] == "patient_busy"


def test_moving_a_visit_to_another_doctor_keeps_that_doctors_limit_per_patient(client, outbox, fixed_clock):
    """From an outside review: a reassigned visit was counted for no doctor, so a patient ended with two
    upcoming visits with a doctor whose clinic allows one."""
    w = shared(client, outbox, fixed_clock)
    b = w["b"]["clinic_id"]
    ok(jpost(client, f"/clinics/{b}/policies", {"max_future_visits_per_doctor": 1}, token=w["admin_b"]["token"],
             method="put"))
    ok(jpost(client, f"/clinics/{b}/doctors/{w['second']['user_id']}/exceptions",
             {"kind": "extra", "date_from": MON, "date_until": MON, "start": "14:00", "end": "16:00",
              "branch_id": w["b"]["branch_id"], "modality": "in_person"}, token=w["admin_b"]["token"]), 201)
    p = patient(client, outbox, "+79140000205")
    visit = ok(jpost(client, "/bookings", booking_in(w, "b", f"{MON}T12:00:00Z", w["doctor"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    with_second = ok(jpost(client, "/bookings", booking_in(w, "b", f"{MON}T08:00:00Z", w["second"]).model_dump(
        exclude_none=True), token=p["token"]), 201)
    path = f"/bookings/{visit['booking_id']}/reassign"
    r = jpost(client, path, {"doctor_id": w["second"]["user_id"]}, token=w["admin_b"]["token"])
    assert r.status_code == 409 and body(r)["code"] == "visit_limit_per_doctor", r.body
    # once the patient's own visit with the second doctor is cancelled, the move goes through, and counts
    ok(jpost(client, f"/bookings/{with_second['booking_id']}/cancel", {}, token=p["token"]))
    ok(jpost(client, path, {"doctor_id": w["second"]["user_id"]}, token=w["admin_b"]["token"]))
    r = jpost(client, "/bookings", booking_in(w, "b", f"{MON}T08:30:00Z", w["second"]).model_dump(exclude_none=True),
              token=p["token"])
    assert r.status_code == 409 and body(r)["code"] == "visit_limit_per_doctor", r.body
    # and the shared doctor's counter let the visit go: the patient may book the shared doctor again
    ok(jpost(client, "/bookings", booking_in(w, "b", f"{MON}T13:00:00Z", w["doctor"]).model_dump(exclude_none=True),
             token=p["token"]), 201)
