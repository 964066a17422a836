"""Hours as clinics keep them, through HTTP on DynamoDB Local: a night duty past midnight, a slot ending at
midnight, the clinic's booking horizon reaching a DST day; and cross-field errors naming the fields."""
from tests.conftest import body, jpost
from tests.unit.booking_setup import CONSULT, patient
from tests.unit.clinic_setup import ok, world


def setup(client, outbox, fixed_clock, *templates):
    w = world(client, outbox, fixed_clock)
    cid, did, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["admin_a"]["token"]
    w["consult"] = ok(jpost(client, f"/clinics/{cid}/services", CONSULT, token=tok), 201)["service_id"]
    for weekday, start, end, *branch in templates:
        ok(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
                 {"branch_id": branch[0] if branch else w["a"]["branch_id"], "modality": "in_person",
                  "weekday": weekday, "start": start, "end": end}, token=tok), 201)
    return w


def free(client, w, d_from, d_to=None):
    r = client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w['a']['clinic_id']}"
                        f"&service_id={w['consult']}&date_from={d_from}&date_to={d_to or d_from}")
    return [(s["start"], s["local"]) for s in ok(r)["items"]]


def test_a_night_duty_past_midnight_and_a_slot_ending_at_midnight(client, outbox, fixed_clock):
    # Kaliningrad is UTC+2: Tuesday 22:00-02:00 is 20:00Z-00:00Z; Thursday 20:00-00:00 ends at midnight
    w = setup(client, outbox, fixed_clock, ("tue", "22:00", "02:00"), ("thu", "20:00", "00:00"))
    tuesday = free(client, w, "2026-12-01")
    assert [s for s, _ in tuesday] == ["2026-12-01T20:00:00Z", "2026-12-01T20:30:00Z", "2026-12-01T21:00:00Z",
                                       "2026-12-01T21:30:00Z"]
    # the hours after midnight are Wednesday's local day
    wednesday = free(client, w, "2026-12-02")
    assert [s for s, _ in wednesday] == ["2026-12-01T22:00:00Z", "2026-12-01T22:30:00Z", "2026-12-01T23:00:00Z",
                                         "2026-12-01T23:30:00Z"]
    assert wednesday[0][1].startswith("2026-12-02T00:00")
    thursday = free(client, w, "2026-12-03")
    assert thursday[-1][0] == "2026-12-03T21:30:00Z" and len(thursday) == 8  # 23:30-00:00 local is the last
    p = patient(client, outbox, "+79140000101")
    for start in ("2026-12-01T21:30:00Z", "2026-12-01T22:00:00Z", "2026-12-03T21:30:00Z"):
        ok(jpost(client, "/bookings", {"clinic_id": w["a"]["clinic_id"], "service_id": w["consult"],
                                       "doctor_id": w["doctor"]["user_id"], "start": start}, token=p["token"]), 201)
    # the doctor's agenda puts each visit on its clinic's local day (23:30-00:00 on Tuesday, 00:00 on Wednesday)
    doc = w["doctor"]["token"]
    tue = ok(jpost(client, "/me/agenda?date_from=2026-12-01&date_to=2026-12-01", token=doc, method="get"))["items"]
    wed = ok(jpost(client, "/me/agenda?date_from=2026-12-02&date_to=2026-12-02&time_zone=Europe/Kaliningrad",
                   token=doc, method="get"))["items"]
    thu = ok(jpost(client, "/me/agenda?date_from=2026-12-03&date_to=2026-12-03", token=doc, method="get"))["items"]
    assert [b["start"]["local"][:16] for b in tue] == ["2026-12-01T23:30"]
    assert tue[0]["end"]["local"][:16] == "2026-12-02T00:00"
    assert [b["start"]["local"][:16] for b in wed] == ["2026-12-02T00:00"]
    assert [b["end"]["local"][:16] for b in thu] == ["2026-12-04T00:00"]
    assert free(client, w, "2026-12-01")[-1][0] == "2026-12-01T21:00:00Z"


def test_the_slot_search_reaches_the_clinics_horizon_and_a_spring_dst_day(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, tok = w["a"]["clinic_id"], w["admin_a"]["token"]
    berlin = ok(jpost(client, f"/clinics/{cid}/branches",
                      {"name": {"ru": "Берлин", "en": "Berlin"}, "address": "Unter den Linden 1", "city": "Berlin",
                       "time_zone": "Europe/Berlin"}, token=tok), 201)["branch_id"]
    w["consult"] = ok(jpost(client, f"/clinics/{cid}/services", CONSULT, token=tok), 201)["service_id"]
    # Sunday 28 March 2027, 01:00-05:00 in Berlin: 02:00-03:00 does not exist, so the window is 3 real hours
    ok(jpost(client, f"/clinics/{cid}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": berlin, "modality": "in_person", "weekday": "sun", "start": "01:00", "end": "05:00"},
             token=tok), 201)
    assert free(client, w, "2027-03-28") == []  # beyond the default 60 days
    ok(jpost(client, f"/clinics/{cid}/policies", {"booking_horizon_days": 366}, token=tok, method="put"))
    starts = [s for s, _ in free(client, w, "2027-03-28")]
    assert starts == ["2027-03-28T00:00:00Z", "2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z",
                      "2027-03-28T01:30:00Z", "2027-03-28T02:00:00Z", "2027-03-28T02:30:00Z"]
    p = patient(client, outbox, "+79140000102")
    made = ok(jpost(client, "/bookings", {"clinic_id": cid, "service_id": w["consult"],
                                          "doctor_id": w["doctor"]["user_id"], "start": "2027-03-28T01:00:00Z"},
                    token=p["token"]), 201)
    assert made["start"]["local"].startswith("2027-03-28T03:00") and made["start"]["local"].endswith("+02:00")
    r = jpost(client, f"/clinics/{cid}/policies", {"booking_horizon_days": 367}, token=tok, method="put")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "booking_horizon_days"


def fields_of(r, status=422):
    assert r.status_code == status, (r.status_code, r.body)
    return {e["field"] for e in body(r)["errors"]}


def test_cross_field_rules_name_the_fields(client, outbox, fixed_clock):
    w = setup(client, outbox, fixed_clock)
    cid, did, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["admin_a"]["token"]
    base = {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "fri"}
    assert fields_of(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
                           {**base, "start": "09:03", "end": "12:00"}, token=tok)) == {"start"}
    assert fields_of(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
                           {**base, "start": "09:00", "end": "09:00"}, token=tok)) == {"start", "end"}
    assert fields_of(jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
                           {"kind": "leave", "date_from": "2026-12-10", "date_until": "2026-12-09"},
                           token=tok)) == {"date_from", "date_until"}
    assert fields_of(jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
                           {"kind": "leave", "date_from": "2026-12-10", "date_until": "2028-12-09"},
                           token=tok)) == {"date_from", "date_until"}
    assert fields_of(jpost(client, f"/clinics/{cid}/invitations",
                           {"role": "clinic_admin", "phone": "+79110000099", "email": "a@b.example"},
                           token=tok)) == {"phone", "email"}
    q = f"/catalog/doctors/{did}/slots?clinic_id={cid}&service_id={w['consult']}"
    assert fields_of(client.http.get(q + "&date_from=2026-12-10&date_to=2026-12-01")) == {"date_from", "date_to"}
    assert fields_of(client.http.get(q + "&date_from=2026-12-01&date_to=2027-06-01")) == {"date_from", "date_to"}
    # a waitlist range whose days are over is refused, naming date_to
    p = patient(client, outbox, "+79140000103")
    wl = {"clinic_id": cid, "service_id": w["consult"], "doctor_id": did}
    assert fields_of(jpost(client, "/waitlist", {**wl, "date_from": "2026-11-01", "date_to": "2026-11-20"},
                           token=p["token"])) == {"date_to"}
    ok(jpost(client, "/waitlist", {**wl, "date_from": "2026-11-20", "date_to": "2026-12-20"}, token=p["token"]), 201)


def test_a_service_naming_a_specialty_is_booked_only_with_a_doctor_who_has_it(client, outbox, fixed_clock):
    from tests.conftest import make_staff
    from tests.unit.clinic_setup import DOCTOR_PROFILE, invite_doctor

    w = world(client, outbox, fixed_clock)
    cid, tok = w["a"]["clinic_id"], w["admin_a"]["token"]
    cardiologist = make_staff(client, outbox, fixed_clock, "+79110000008", "doctor")
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_a"], cid, cardiologist)
    ok(jpost(client, "/me/doctor-profile", {**DOCTOR_PROFILE, "specialties": ["cardiologist"]},
             token=cardiologist["token"], method="put"))
    ok(jpost(client, f"/clinics/{cid}/doctors/{cardiologist['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "in_person", "weekday": "mon", "start": "14:00",
              "end": "18:00"}, token=tok), 201)
    # the brain MRI names radiologist: the radiologist's slots are offered, the cardiologist's are refused
    mri = f"service_id={w['service_id']}&clinic_id={cid}&date_from=2026-11-30&date_to=2026-11-30"
    assert ok(client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}/slots?{mri}"))["items"]
    r = client.http.get(f"/catalog/doctors/{cardiologist['user_id']}/slots?{mri}")
    assert r.status_code == 422 and body(r)["errors"][0] == {
        "field": "doctor_id", "code": "doctor_lacks_specialty",
        "message": "this service is given by a radiologist; choose a doctor who is one"}
    p = patient(client, outbox, "+79140000104")
    r = jpost(client, "/bookings", {"clinic_id": cid, "service_id": w["service_id"],
                                    "doctor_id": cardiologist["user_id"], "start": "2026-11-30T12:00:00Z"},
              token=p["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "doctor_id"
