"""A clinic puts itself on the platform, and patients find it in the catalogue."""
import json

from local.stripe_fake import sign
from tests.conftest import body, jpost, make_staff, relogin
from tests.unit.clinic_setup import CLINIC, SERVICE, branch, new_clinic, new_clinic_de, ok, world


def test_onboarding_journey_ends_in_the_public_catalogue(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid = w["a"]["clinic_id"]
    clinic = ok(jpost(client, f"/clinics/{cid}", token=w["admin_a"]["token"], method="get"))
    assert clinic["status"] == "active" and clinic["policies"]["cancellation_window_hours"] == 24

    listed = ok(client.http.get("/catalog/clinics?city=Калининград"))
    assert [i["clinic_id"] for i in listed["items"]] == [cid]
    assert listed["items"][0]["contacts"] == {"phone": "+74012123456"}  # e-mail was not marked public
    assert listed["items"][0]["branch"]["time_zone"] == "Europe/Kaliningrad"
    assert ok(client.http.get("/catalog/clinics?city=Москва"))["items"] == []  # clinic B is a draft

    doctors = ok(client.http.get("/catalog/doctors?specialty=cardiologist"))["items"]
    assert [(d["doctor_id"], d["clinic_id"], d["modalities"]) for d in doctors] == \
        [(w["doctor"]["user_id"], cid, ["in_person"])]
    assert ok(client.http.get("/catalog/doctors?specialty=cardiologist&modality=video"))["items"] == []
    assert ok(client.http.get("/catalog/doctors?specialty=cardiologist&language=de"))["items"] == []
    assert len(ok(client.http.get(f"/catalog/doctors?clinic_id={cid}"))["items"]) == 1

    services = ok(client.http.get(f"/catalog/clinics/{cid}/services"))["items"]
    assert services[0]["price"] == {"amount": 650000, "currency": "RUB"}
    assert services[0]["preparation"]["ru"].startswith("Снимите")
    profile = ok(client.http.get(f"/catalog/doctors/{w['doctor']['user_id']}"))
    assert profile["clinics"][0]["clinic_id"] == cid and profile["first_name"] == "Анна"
    public = ok(client.http.get(f"/catalog/clinics/{cid}"))
    assert "tax_id" not in public and "legal_name" not in public and "payouts" not in public
    assert client.http.get(f"/catalog/clinics/{w['b']['clinic_id']}").status_code == 404


def test_staff_must_enrol_an_authenticator_before_acting(client, outbox, fixed_clock):
    admin = make_staff(client, outbox, fixed_clock, "+79110000011", "clinic_admin", totp=False)
    r = jpost(client, "/clinics", CLINIC, token=admin["token"])
    assert r.status_code == 403 and body(r)["code"] == "totp_required"


def test_patients_cannot_register_clinics(client, outbox, fixed_clock):
    from tests.conftest import sign_up

    token = sign_up(client, outbox, "+79110000012")["access_token"]
    r = jpost(client, "/clinics", CLINIC, token=token)
    assert r.status_code == 403 and body(r)["code"] == "role_not_allowed"


def test_lifecycle_moves_only_along_its_path(client, outbox, fixed_clock):
    from tests.conftest import make_platform_admin

    admin = make_staff(client, outbox, fixed_clock, "+79110000021", "clinic_admin")
    platform = make_platform_admin(client, outbox, fixed_clock, "+79110000022")
    clinic = ok(jpost(client, "/clinics", CLINIC, token=admin["token"]), 201)
    cid = clinic["clinic_id"]
    r = jpost(client, f"/clinics/{cid}/submit", {}, token=admin["token"])
    assert r.status_code == 409 and body(r)["code"] == "branch_required"
    ok(jpost(client, f"/clinics/{cid}/branches", branch(), token=admin["token"]), 201)
    assert jpost(client, f"/clinics/{cid}/activate", {}, token=admin["token"]).status_code == 409
    ok(jpost(client, f"/clinics/{cid}/submit", {}, token=admin["token"]))
    queue = ok(jpost(client, "/admin/clinics?status=submitted", token=platform["token"], method="get"))
    assert [c["clinic_id"] for c in queue["items"]] == [cid]
    rejected = ok(jpost(client, f"/clinics/{cid}/reject", {"reason": "Tax number does not match"},
                        token=platform["token"]))
    assert rejected["status"] == "rejected" and rejected["rejection_reason"] == "Tax number does not match"
    assert ok(jpost(client, f"/clinics/{cid}", token=admin["token"], method="get"))["rejection_reason"]
    ok(jpost(client, f"/clinics/{cid}/submit", {}, token=admin["token"]))
    r = jpost(client, f"/clinics/{cid}/verify", {}, token=admin["token"])  # not their call
    assert r.status_code == 403
    ok(jpost(client, f"/clinics/{cid}/verify", {}, token=platform["token"]))
    assert ok(jpost(client, f"/clinics/{cid}/activate", {}, token=admin["token"]))["status"] == "active"
    r = jpost(client, f"/clinics/{cid}/verify", {}, token=platform["token"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


def test_several_admins_by_invitation_and_the_last_one_stays(client, outbox, fixed_clock):
    admin = make_staff(client, outbox, fixed_clock, "+79110000031", "clinic_admin")
    second = make_staff(client, outbox, fixed_clock, "+79110000032", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    inv = ok(jpost(client, f"/clinics/{cid}/invitations", {"role": "clinic_admin", "phone": second["phone"]},
                   token=admin["token"]), 201)
    assert "code" not in inv and "code_hash" not in inv
    code = outbox.last_code(second["phone"])
    ok(jpost(client, "/invitations/accept", {"invitation_id": inv["invitation_id"], "code": code},
             token=second["token"]))
    assert ok(jpost(client, f"/clinics/{cid}", token=second["token"], method="get"))["clinic_id"] == cid
    admins = ok(jpost(client, f"/clinics/{cid}/admins", token=admin["token"], method="get"))["items"]
    assert {a["user_id"] for a in admins} == {admin["user_id"], second["user_id"]}
    assert jpost(client, f"/clinics/{cid}/admins/{second['user_id']}", token=admin["token"],
                 method="delete").status_code == 204
    r = jpost(client, f"/clinics/{cid}/admins/{admin['user_id']}", token=admin["token"], method="delete")
    assert r.status_code == 409 and body(r)["code"] == "last_admin"
    assert jpost(client, f"/clinics/{cid}", token=second["token"], method="get").status_code == 404


def test_invitation_by_email(client, outbox, fixed_clock, capsys, monkeypatch):
    monkeypatch.setenv("EMAIL_GATEWAY", "console")
    from tests.conftest import reset_process_state

    reset_process_state()
    admin = make_staff(client, outbox, fixed_clock, "+79110000035", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    inv = ok(jpost(client, f"/clinics/{cid}/invitations", {"role": "clinic_admin", "email": "new@clinic.example"},
                   token=admin["token"]), 201)
    assert inv["channel"] == "email"
    err = capsys.readouterr().err
    assert "LOCAL ONLY - E-MAIL NOT SENT" in err and inv["invitation_id"] in err


def test_expired_or_wrong_doctor_invitation(client, outbox, fixed_clock):
    admin = make_staff(client, outbox, fixed_clock, "+79110000041", "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, "+79110000042", "doctor")
    other_admin = make_staff(client, outbox, fixed_clock, "+79110000043", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    inv = ok(jpost(client, f"/clinics/{cid}/invitations", {"role": "doctor", "phone": doctor["phone"]},
                   token=admin["token"]), 201)
    code = outbox.last_code(doctor["phone"])
    wrong = "000000" if code != "000000" else "111111"
    r = jpost(client, "/invitations/accept", {"invitation_id": inv["invitation_id"], "code": wrong},
              token=doctor["token"])
    assert r.status_code == 400 and body(r)["code"] == "invalid_code"
    r = jpost(client, "/invitations/accept", {"invitation_id": inv["invitation_id"], "code": code},
              token=other_admin["token"])  # an administrator's account cannot take a doctor's place
    assert r.status_code == 403 and body(r)["code"] == "role_mismatch"
    fixed_clock.advance(days=8)
    relogin(client, doctor, fixed_clock)
    relogin(client, admin, fixed_clock)
    r = jpost(client, "/invitations/accept", {"invitation_id": inv["invitation_id"], "code": code},
              token=doctor["token"])
    assert r.status_code == 400 and body(r)["code"] == "invitation_expired"
    listing = ok(jpost(client, f"/clinics/{cid}/invitations", token=admin["token"], method="get"))
    assert listing["items"][0]["status"] == "expired"
    r = jpost(client, f"/clinics/{cid}/invitations", {"role": "doctor", "email": "doc@example.com"},
              token=admin["token"])
    assert r.status_code == 422  # doctors are invited by phone


def test_one_doctor_works_for_several_clinics(client, outbox, fixed_clock):
    from tests.unit.clinic_setup import invite_doctor

    admin_a = make_staff(client, outbox, fixed_clock, "+79110000051", "clinic_admin")
    admin_b = make_staff(client, outbox, fixed_clock, "+79110000052", "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, "+79110000053", "doctor")
    a = new_clinic(client, admin_a)
    b = new_clinic(client, admin_b, "Москва", "Europe/Moscow")
    invite_doctor(client, outbox, admin_a, a["clinic_id"], doctor)
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, admin_b, b["clinic_id"], doctor)
    ok(jpost(client, "/me/doctor-profile", {"specialties": ["therapist"], "years_of_experience": 3,
                                            "languages": ["ru"]}, token=doctor["token"], method="put"))
    # Kaliningrad Monday 09:00-11:00 (UTC 07:00-09:00)
    ok(jpost(client, f"/clinics/{a['clinic_id']}/doctors/{doctor['user_id']}/templates",
             {"branch_id": a["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00", "end": "11:00"},
             token=admin_a["token"]), 201)
    # Moscow Monday 10:00-12:00 is UTC 07:00-09:00 too: the same hours in another city
    r = jpost(client, f"/clinics/{b['clinic_id']}/doctors/{doctor['user_id']}/templates",
              {"branch_id": b["branch_id"], "modality": "video", "weekday": "mon", "start": "10:00", "end": "12:00"},
              token=admin_b["token"])
    assert r.status_code == 409 and body(r)["code"] == "schedule_overlap"
    assert "another clinic" in body(r)["detail"] and a["clinic_id"] not in body(r)["detail"]
    # Moscow 12:00-14:00 (UTC 09:00-11:00) touches the Kaliningrad shift's end: allowed
    ok(jpost(client, f"/clinics/{b['clinic_id']}/doctors/{doctor['user_id']}/templates",
             {"branch_id": b["branch_id"], "modality": "video", "weekday": "mon", "start": "12:00", "end": "14:00"},
             token=admin_b["token"]), 201)
    mine = ok(jpost(client, "/me/schedule", token=doctor["token"], method="get"))
    assert {t["clinic_id"] for t in mine["templates"]} == {a["clinic_id"], b["clinic_id"]}
    # each clinic sees only its own part of the doctor's week
    theirs = ok(jpost(client, f"/clinics/{b['clinic_id']}/doctors/{doctor['user_id']}/schedule",
                      token=admin_b["token"], method="get"))
    assert {t["clinic_id"] for t in theirs["templates"]} == {b["clinic_id"]}


def test_overlapping_templates_in_one_clinic_and_extra_hours(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, did, bid = w["a"]["clinic_id"], w["doctor"]["user_id"], w["a"]["branch_id"]
    tok = w["admin_a"]["token"]
    r = jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
              {"branch_id": bid, "modality": "video", "weekday": "mon", "start": "12:30", "end": "15:00"}, token=tok)
    assert r.status_code == 409 and w["template_id"] in body(r)["detail"]
    # extra hours on a Monday inside the template clash; on a Sunday they do not
    r = jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
              {"kind": "extra", "date_from": "2026-11-30", "date_until": "2026-11-30", "start": "12:00",
               "end": "14:00", "branch_id": bid, "modality": "in_person"}, token=tok)
    assert r.status_code == 409
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
             {"kind": "extra", "date_from": "2026-11-29", "date_until": "2026-11-29", "start": "12:00",
              "end": "14:00", "branch_id": bid, "modality": "in_person"}, token=tok), 201)
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
             {"kind": "leave", "date_from": "2026-12-28", "date_until": "2027-01-08", "note": "отпуск"}, token=tok), 201)
    shift = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/duty-shifts",
                     {"branch_id": bid, "specialty": "cardiologist", "starts_at": "2026-11-24T20:00",
                      "ends_at": "2026-11-25T08:00"}, token=tok), 201)
    assert shift["starts_at_utc"] == "2026-11-24T18:00:00Z"  # Kaliningrad is UTC+2
    schedule = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/schedule", token=tok, method="get"))
    assert len(schedule["templates"]) == 1 and len(schedule["exceptions"]) == 2 and len(schedule["duty_shifts"]) == 1
    # deleting the template frees Monday
    assert jpost(client, f"/clinics/{cid}/doctors/{did}/templates/{w['template_id']}", token=tok,
                 method="delete").status_code == 204
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
             {"branch_id": bid, "modality": "video", "weekday": "mon", "start": "12:30", "end": "15:00"},
             token=tok), 201)


def test_schedule_template_keeps_wall_time_across_dst():
    from datetime import date, time

    from chalicelib.clinics.schedule import template_occurrences

    # Berlin leaves summer time on 2026-10-25: 09:00 local is 07:00 UTC before and 08:00 UTC after.
    got = list(template_occurrences("mon", time(9), time(13), "Europe/Berlin", date(2026, 10, 19), date(2026, 10, 26)))
    assert [s.strftime("%Y-%m-%d %H:%M") for s, _ in got] == ["2026-10-19 07:00", "2026-10-26 08:00"]
    sakhalin = list(template_occurrences("mon", time(9), time(10), "Asia/Sakhalin", date(2026, 11, 30),
                                         date(2026, 11, 30)))
    kaliningrad = list(template_occurrences("mon", time(9), time(10), "Europe/Kaliningrad", date(2026, 11, 30),
                                            date(2026, 11, 30)))
    assert sakhalin[0][0].hour == 22 and sakhalin[0][0].day == 29  # UTC+11: the previous evening in UTC
    assert kaliningrad[0][0].hour == 7


def test_bad_input_names_the_problem(client, outbox, fixed_clock):
    admin = make_staff(client, outbox, fixed_clock, "+79110000061", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    tok = admin["token"]

    def fields(r):
        assert r.status_code == 422, r.body
        return {e["field"] for e in body(r)["errors"]}

    assert fields(jpost(client, f"/clinics/{cid}/branches", branch(zone="Europe/Atlantis"), token=tok)) == \
        {"time_zone"}
    assert fields(jpost(client, f"/clinics/{cid}/branches", branch(zone="MSK"), token=tok)) == {"time_zone"}
    assert fields(jpost(client, f"/clinics/{cid}/services",
                        {**SERVICE, "price": {"amount": 650000.5, "currency": "RUB"}}, token=tok)) == {"price.amount"}
    assert fields(jpost(client, f"/clinics/{cid}/services",
                        {**SERVICE, "prepayment": {"kind": "percent", "percent": 150}}, token=tok)) == \
        {"prepayment.percent"}
    assert fields(jpost(client, f"/clinics/{cid}/services",
                        {**SERVICE, "price": {"amount": 100, "currency": "EUR"}}, token=tok)) == {"price.currency"}
    assert fields(jpost(client, f"/clinics/{cid}/policies", {"cashback_percent": 101}, token=tok,
                        method="put")) == {"cashback_percent"}
    r = jpost(client, f"/clinics/{cid}/services", {**SERVICE, "prepayment": {"kind": "percent", "percent": 30}},
              token=tok)
    assert r.status_code == 409 and body(r)["code"] == "payouts_not_ready"


def test_policies_are_set_and_read(client, outbox, fixed_clock):
    admin = make_staff(client, outbox, fixed_clock, "+79110000071", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    policies = {"cancellation_window_hours": 48, "no_show_limit": 3, "no_show_window_days": 90, "hold_minutes": 15,
                "minimum_notice_minutes": 120, "cashback_percent": 5,
                "cashback_cap": {"amount": 100000, "currency": "RUB"}, "feedback_after_visit": False,
                "max_future_visits_per_doctor": 3, "max_visits_per_day": 1}
    clinic = ok(jpost(client, f"/clinics/{cid}/policies", policies, token=admin["token"], method="put"))
    # the default horizon (two months), the wallet's defaults, refund shares (a late cancellation or a no-show
    # refunds nothing) and notify's default reminders
    assert clinic["policies"] == {**policies, "booking_horizon_days": 60,
                                  "cashback_max_spend_percent": 50, "cashback_expiry_days": 365,
                                  "late_cancel_refund_percent": 0, "no_show_refund_percent": 0,
                                  "reminder_hours": [24, 2]}


def test_payout_onboarding_with_connect_and_the_signed_webhook(client, outbox, fixed_clock, fake_stripe):
    admin = make_staff(client, outbox, fixed_clock, "+79110000081", "clinic_admin")
    cid = new_clinic_de(client, admin)["clinic_id"]
    start = ok(jpost(client, f"/clinics/{cid}/payouts/onboarding", {}, token=admin["token"]), 201)
    assert start["account_id"].startswith("acct_") and start["onboarding_url"].startswith("http://127.0.0.1")
    again = ok(jpost(client, f"/clinics/{cid}/payouts/onboarding", {}, token=admin["token"]), 201)
    assert again["account_id"] == start["account_id"]  # one connected account per clinic
    created = [f for m, p, f in fake_stripe.requests if p == "/v1/accounts"]
    assert len(created) == 1 and created[0]["metadata[clinic_id]"] == cid and created[0]["type"] == "express"
    status = ok(jpost(client, f"/clinics/{cid}/payouts", token=admin["token"], method="get"))
    assert status["charges_enabled"] is False

    event = fake_stripe.complete_onboarding(start["account_id"])
    payload = json.dumps(event).encode()
    forged = client.http.post("/webhooks/stripe", body=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload, "whsec_wrong")})
    assert forged.status_code == 400 and body(forged)["code"] == "invalid_signature"
    assert ok(jpost(client, f"/clinics/{cid}/payouts", token=admin["token"], method="get"))["charges_enabled"] is False
    good = client.http.post("/webhooks/stripe", body=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload, "whsec_test_secret")})
    assert good.status_code == 200 and body(good) == {"handled": True}
    assert ok(jpost(client, f"/clinics/{cid}/payouts", token=admin["token"], method="get"))["charges_enabled"] is True
    # replaying the same event changes nothing; prepayment may now be required
    replay = client.http.post("/webhooks/stripe", body=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload, "whsec_test_secret")})
    assert body(replay) == {"handled": False}
    ok(jpost(client, f"/clinics/{cid}/services", {**SERVICE, "price": {"amount": 12000, "currency": "EUR"},
                                                   "prepayment": {"kind": "percent", "percent": 30}},
             token=admin["token"]), 201)


def test_wall_times_have_no_offset_and_shifts_need_a_time(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, did, bid, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["a"]["branch_id"], w["admin_a"]["token"]
    cases = [
        (f"/clinics/{cid}/branches", {**branch(), "opening_hours": {"tue": [{"start": "08:00+03:00", "end": "20:00"}]}}),
        (f"/clinics/{cid}/doctors/{did}/templates",
         {"branch_id": bid, "modality": "video", "weekday": "tue", "start": "09:00Z", "end": "13:00"}),
        (f"/clinics/{cid}/doctors/{did}/templates",
         {"branch_id": bid, "modality": "video", "weekday": "tue", "start": "09:00:30", "end": "13:00"}),
        (f"/clinics/{cid}/doctors/{did}/exceptions",
         {"kind": "leave", "date_from": "2027-01-01", "date_until": "2027-01-02", "start": "09:00Z", "end": "13:00"}),
        (f"/clinics/{cid}/doctors/{did}/duty-shifts",
         {"branch_id": bid, "specialty": "cardiologist", "starts_at": "2027-03-28", "ends_at": "2027-03-28T08:00"}),
    ]
    for path, payload in cases:
        r = jpost(client, path, payload, token=tok)
        assert r.status_code == 422, (path, r.body)


def test_staff_views_show_no_index_keys_and_times_as_utc_strings(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, did, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["admin_a"]["token"]
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/duty-shifts",
             {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": "2026-12-01T20:00",
              "ends_at": "2026-12-02T06:00"}, token=tok), 201)
    text = json.dumps([ok(jpost(client, f"/clinics/{cid}/doctors/{did}/schedule", token=tok, method="get")),
                       ok(jpost(client, f"/clinics/{cid}", token=tok, method="get"))])
    assert "GSI" not in text and '"PK"' not in text
    assert ok(jpost(client, f"/clinics/{cid}", token=tok, method="get"))["created_at"].endswith("Z")


def test_sms_provider_failure_is_a_503_and_nothing_half_written(client, outbox, fixed_clock, monkeypatch):
    from chalicelib.core import aws

    admin = make_staff(client, outbox, fixed_clock, "+79110000091", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    real = aws.client("sns")

    class Down:
        def publish(self, **_):
            raise RuntimeError("provider down")

    monkeypatch.setitem(aws._clients, "sns", Down())
    r = jpost(client, f"/clinics/{cid}/invitations", {"role": "doctor", "phone": "+79110000092"}, token=admin["token"])
    assert r.status_code == 503 and body(r)["code"] == "sms_unavailable" and r.headers["Retry-After"]
    monkeypatch.setitem(aws._clients, "sns", real)
    # nothing half-written: no pending invitation that nobody received is left in the clinic's list
    listed = body(jpost(client, f"/clinics/{cid}/invitations", token=admin["token"], method="get"))["items"]
    assert listed == []
    # sent again once the provider is back, it is the one invitation, and it works
    r = jpost(client, f"/clinics/{cid}/invitations", {"role": "doctor", "phone": "+79110000092"}, token=admin["token"])
    assert r.status_code == 201
    listed = body(jpost(client, f"/clinics/{cid}/invitations", token=admin["token"], method="get"))["items"]
    assert [i["status"] for i in listed] == ["pending"]


def test_a_prepayment_patched_to_an_empty_rule_reads_back_as_none(client, outbox, fixed_clock):
    """Found by the fuzzer: `{"prepayment": {}}` was stored as `{}`, a rule without a kind."""
    from tests.unit.clinic_setup import SERVICE, new_clinic

    admin = make_staff(client, outbox, fixed_clock, "+79110000095", "clinic_admin")
    cid = new_clinic(client, admin)["clinic_id"]
    svc = body(jpost(client, f"/clinics/{cid}/services", SERVICE, token=admin["token"]))
    r = jpost(client, f"/clinics/{cid}/services/{svc['service_id']}", {"prepayment": {}, "version": svc["version"]},
              token=admin["token"], method="patch")
    assert r.status_code == 200 and body(r)["prepayment"] == {"kind": "none"}
