"""Who may do what: every clinic endpoint against every role.

Roles: a patient, the clinic's doctor, another clinic's administrator, a
platform administrator, and this clinic's administrator. Another tenant's
objects answer 404 (their existence is not revealed); a role that may never do
a thing answers 403; the allowed role succeeds.
"""
from tests.conftest import body, jpost
from tests.unit.clinic_setup import SERVICE, branch, world

ROLES = ("patient", "doctor", "admin_b", "platform", "admin_a")


def endpoints(w, version):
    cid, bid, did = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"]
    sid, tid = w["service_id"], w["template_id"]
    c = f"/clinics/{cid}"
    template = {"branch_id": bid, "modality": "video", "weekday": "tue", "start": "09:00", "end": "10:00"}
    # (method, path, body, read?) - a read is also open to platform administrators
    return [
        ("get", c, None, True),
        ("patch", c, {"display_name": {"ru": "Здоровье+", "en": "Zdorovye+"}, "version": version}, False),
        ("get", c + "/admins", None, False),
        ("get", c + "/invitations", None, False),
        ("post", c + "/invitations", {"role": "clinic_admin", "email": "x@clinic.example"}, False),
        ("post", c + "/branches", branch(name="Второй"), False),
        ("get", c + "/branches", None, True),
        ("patch", f"{c}/branches/{bid}", {"address": "ул. Мира, 5", "version": 1}, False),
        ("post", f"{c}/branches/{bid}/resources", {"kind": "ultrasound", "name": "УЗИ-1"}, False),
        ("get", c + "/resources", None, True),
        ("post", c + "/services", {**SERVICE, "name": {"ru": "Второй", "en": "Second"}}, False),
        ("get", c + "/services", None, True),
        ("patch", f"{c}/services/{sid}", {"duration_minutes": 45, "version": 1}, False),
        ("put", c + "/policies", {"hold_minutes": 20}, False),
        ("get", c + "/payouts", None, True),
        ("get", c + "/doctors", None, True),
        ("get", f"{c}/doctors/{did}/schedule", None, True),
        ("post", f"{c}/doctors/{did}/templates", template, False),
        ("post", f"{c}/doctors/{did}/exceptions",
         {"kind": "leave", "date_from": "2027-01-01", "date_until": "2027-01-02"}, False),
        ("post", f"{c}/doctors/{did}/duty-shifts",
         {"branch_id": bid, "specialty": "cardiologist", "starts_at": "2026-12-02T20:00",
          "ends_at": "2026-12-03T06:00"}, False),
        ("delete", f"{c}/doctors/{did}/templates/{tid}", None, False),
    ]


def expected(role, read):
    if role == "admin_a":
        return "ok"
    if role == "admin_b":
        return 404
    if role == "platform":
        return "ok" if read else 403
    return 403


def call(client, token, method, path, payload):
    return jpost(client, path, payload, token=token, method=method)


def test_every_clinic_endpoint_against_every_role(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    failures = []
    version = body(call(client, w["admin_a"]["token"], "get", f"/clinics/{w['a']['clinic_id']}", None))["version"]
    for method, path, payload, read in endpoints(w, version):
        for role in ROLES:
            r = call(client, w[role]["token"], method, path, payload)
            want = expected(role, read)
            ok = 200 <= r.status_code < 300 if want == "ok" else r.status_code == want
            if not ok:
                failures.append((method, path, role, want, r.status_code, r.body[:200]))
            if want != "ok":
                assert r.headers["Content-Type"] == "application/problem+json"
    assert failures == []


def test_another_tenants_children_are_not_found_even_through_the_own_clinic(client, outbox, fixed_clock):
    """Clinic B's admin addresses clinic A's branch, service or doctor under clinic B's own id: 404."""
    w = world(client, outbox, fixed_clock)
    b, tok = w["b"]["clinic_id"], w["admin_b"]["token"]
    assert call(client, tok, "patch", f"/clinics/{b}/branches/{w['a']['branch_id']}",
                {"address": "ул. Чужая, 1", "version": 1}, ).status_code == 404
    assert call(client, tok, "patch", f"/clinics/{b}/services/{w['service_id']}",
                {"duration_minutes": 10, "version": 1}).status_code == 404
    assert call(client, tok, "post", f"/clinics/{b}/doctors/{w['doctor']['user_id']}/templates",
                {"branch_id": w["b"]["branch_id"], "modality": "video", "weekday": "sun", "start": "09:00",
                 "end": "10:00"}).status_code == 404
    assert call(client, tok, "post", f"/clinics/{b}/branches/{w['a']['branch_id']}/resources",
                {"kind": "mri", "name": "x"}).status_code == 404
    r = call(client, tok, "post", f"/clinics/{b}/doctors/{w['doctor']['user_id']}/duty-shifts",
             {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": "2026-12-02T20:00",
              "ends_at": "2026-12-03T06:00"})
    assert r.status_code == 404
    # and the doctor's schedule in clinic A is untouched
    a_view = body(call(client, w["admin_a"]["token"], "get",
                       f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/schedule", None))
    assert len(a_view["templates"]) == 1 and a_view["duty_shifts"] == []


def test_clinic_registration_and_lists_by_role(client, outbox, fixed_clock):
    from tests.unit.clinic_setup import CLINIC

    w = world(client, outbox, fixed_clock)
    for role, want in (("patient", 403), ("doctor", 403), ("platform", 403), ("admin_b", 201)):
        assert call(client, w[role]["token"], "post", "/clinics", CLINIC).status_code == want, role
    for role, want in (("patient", 403), ("doctor", 403), ("platform", 403), ("admin_a", 200)):
        assert call(client, w[role]["token"], "get", "/me/clinics", None).status_code == want, role
    mine = body(call(client, w["admin_b"]["token"], "get", "/me/clinics", None))["items"]
    assert len(mine) == 2 and w["a"]["clinic_id"] not in {c["clinic_id"] for c in mine}
    for role, want in (("patient", 403), ("doctor", 403), ("admin_a", 403), ("platform", 200)):
        assert call(client, w[role]["token"], "get", "/admin/clinics?status=active", None).status_code == want


def test_only_platform_admins_verify_or_reject(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    b = w["b"]["clinic_id"]
    assert call(client, w["admin_b"]["token"], "post", f"/clinics/{b}/submit", {}).status_code == 200
    for role in ("patient", "doctor", "admin_a", "admin_b"):
        assert call(client, w[role]["token"], "post", f"/clinics/{b}/verify", {}).status_code == 403, role
        assert call(client, w[role]["token"], "post", f"/clinics/{b}/reject", {"reason": "nope"}).status_code == 403
    assert call(client, w["platform"]["token"], "post", f"/clinics/{b}/verify", {}).status_code == 200
    # submit/activate belong to the clinic's own administrators
    assert call(client, w["admin_a"]["token"], "post", f"/clinics/{b}/activate", {}).status_code == 404
    assert call(client, w["platform"]["token"], "post", f"/clinics/{b}/activate", {}).status_code == 403
    assert call(client, w["admin_b"]["token"], "post", f"/clinics/{b}/activate", {}).status_code == 200


def test_doctor_profile_and_schedule_are_the_doctors_own(client, outbox, fixed_clock):
    from tests.unit.clinic_setup import DOCTOR_PROFILE

    w = world(client, outbox, fixed_clock)
    for role in ("patient", "admin_a", "admin_b", "platform"):
        assert call(client, w[role]["token"], "put", "/me/doctor-profile", DOCTOR_PROFILE).status_code == 403
        assert call(client, w[role]["token"], "get", "/me/schedule", None).status_code == 403
    me = body(call(client, w["doctor"]["token"], "get", "/me/doctor-profile", None))
    assert me["doctor_id"] == w["doctor"]["user_id"]
    # the doctor cannot manage a clinic's schedule, not even their own in it
    r = call(client, w["doctor"]["token"], "post",
             f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
             {"branch_id": w["a"]["branch_id"], "modality": "video", "weekday": "sun", "start": "09:00",
              "end": "10:00"})
    assert r.status_code == 403


def test_catalogue_is_public_and_the_same_for_everyone(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    anonymous = client.http.get("/catalog/clinics?city=Калининград")
    assert anonymous.status_code == 200
    for role in ROLES:
        r = jpost(client, "/catalog/clinics?city=Калининград", token=w[role]["token"], method="get")
        assert body(r) == body(anonymous)


def test_catalogue_reads_are_single_queries(client, outbox, fixed_clock, ddb_calls):
    w = world(client, outbox, fixed_clock)
    cid = w["a"]["clinic_id"]
    budgets = {
        "/catalog/clinics?city=Калининград": ["Query"],
        "/catalog/doctors?specialty=cardiologist": ["Query"],
        "/catalog/doctors?specialty=cardiologist&language=ru&modality=in_person": ["Query"],
        f"/catalog/doctors?clinic_id={cid}": ["Query"],
        f"/catalog/clinics/{cid}": ["GetItem", "Query"],
        f"/catalog/clinics/{cid}/services": ["GetItem", "Query"],
        f"/catalog/doctors/{w['doctor']['user_id']}": ["GetItem", "Query"],
    }
    for path, calls in budgets.items():
        ddb_calls.reset()
        assert client.http.get(path).status_code == 200, path
        assert ddb_calls.calls == calls, (path, ddb_calls.calls)


def test_catalogue_pages_with_an_opaque_cursor(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    tok, cid = w["admin_a"]["token"], w["a"]["clinic_id"]
    for i in range(3):
        jpost(client, f"/clinics/{cid}/branches", branch(name=f"Филиал {i}"), token=tok)
    first = body(client.http.get("/catalog/clinics?city=Калининград&limit=2"))
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = body(client.http.get(f"/catalog/clinics?city=Калининград&limit=2&cursor={first['next_cursor']}"))
    ids = [i["branch"]["branch_id"] for i in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 4
    r = client.http.get("/catalog/clinics?city=Калининград&cursor=tampered" + first["next_cursor"][8:])
    assert r.status_code == 400 and body(r)["errors"][0]["field"] == "cursor"
    # a cursor is bound to the list that issued it: another city's catalogue refuses it with a 400
    r = client.http.get(f"/catalog/clinics?city=Москва&limit=2&cursor={first['next_cursor']}")
    assert r.status_code == 400 and body(r)["code"] == "invalid_cursor"
    assert client.http.get("/catalog/clinics?city=Калининград&limit=101").status_code == 422
    assert client.http.get("/catalog/doctors").status_code == 422  # a filter is required


def test_every_delete_route_and_payout_onboarding_against_every_role(client, outbox, fixed_clock, fake_stripe):
    """Destructive routes: another clinic's administrator gets 404, a doctor, a patient and a platform
    administrator 403, and only then does this clinic's administrator succeed."""
    from tests.conftest import make_staff
    from tests.unit.test_clinic_membership import invite_admin

    w = world(client, outbox, fixed_clock)
    cid, bid, did, tok = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"], w["admin_a"]["token"]
    c = f"/clinics/{cid}"
    second = make_staff(client, outbox, fixed_clock, "+79110000099", "clinic_admin")
    invite_admin(client, outbox, w["admin_a"], cid, second)
    inv = body(call(client, tok, "post", c + "/invitations", {"role": "doctor", "phone": "+79110000098"}))
    leave = body(call(client, tok, "post", f"{c}/doctors/{did}/exceptions",
                      {"kind": "leave", "date_from": "2027-01-01", "date_until": "2027-01-02"}))
    shift = body(call(client, tok, "post", f"{c}/doctors/{did}/duty-shifts",
                      {"branch_id": bid, "specialty": "cardiologist", "starts_at": "2026-12-02T20:00",
                       "ends_at": "2026-12-03T06:00"}))
    routes = [
        ("post", c + "/payouts/onboarding", {}),
        ("delete", f"{c}/doctors/{did}/exceptions/{leave['item_id']}", None),
        ("delete", f"{c}/doctors/{did}/duty-shifts/{shift['item_id']}", None),
        ("delete", f"{c}/doctors/{did}/templates/{w['template_id']}", None),
        ("delete", f"{c}/invitations/{inv['invitation_id']}", None),
        ("delete", f"{c}/admins/{second['user_id']}", None),
        ("delete", f"{c}/doctors/{did}", None),
    ]
    failures = []
    for method, path, payload in routes:
        for role in ROLES:
            r = call(client, w[role]["token"], method, path, payload)
            want = {"admin_b": 404, "admin_a": "ok"}.get(role, 403)
            if role == "admin_a" and path.endswith("/payouts/onboarding"):
                want = 422  # past every access check, the clinic (in Russia) hears Stripe does not serve it
            ok = 200 <= r.status_code < 300 if want == "ok" else r.status_code == want
            if not ok:
                failures.append((method, path, role, want, r.status_code, r.body[:200]))
    assert failures == []
