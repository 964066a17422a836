"""Visit conclusions: by the visit's doctor after it is completed; a draft until signed; signed never
changes; an amendment is a new signed version pointing at the old; the patient sees them in the card."""
from __future__ import annotations

import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import after_the_visit, backend_env, records_module, records_world, visited_world  # noqa: F401  (one world per module)
from tests.unit.test_records_access import log_items
from tests.unit.test_records_card import raw_table

FULL = {"complaints": "Shortness of breath on exertion", "findings": "Wheezing on auscultation",
        "diagnosis": "Exacerbation of bronchial asthma", "icd10": "J45.0",
        "recommendations": "Budesonide inhaler twice a day", "observation_months": 6}


@pytest.fixture
def w(client, outbox, fixed_clock):
    return records_world(client, outbox, fixed_clock)


@pytest.fixture
def wv(client, outbox, fixed_clock):
    """The world after the visit (completed by its doctor)."""
    return visited_world(client, outbox, fixed_clock)


def test_a_conclusion_is_written_after_the_visit_signed_once_and_amended_as_a_new_version(client, w, fixed_clock):
    bid = w["visit"]["booking_id"]
    C = f"/bookings/{bid}/conclusion"
    r = jpost(client, C, {"complaints": "cough"}, token=w["doctor"]["token"], method="put")
    assert r.status_code == 409 and body(r)["code"] == "visit_not_completed"

    after_the_visit(client, w, fixed_clock)
    d, p = w["doctor"]["token"], w["patient"]["token"]
    draft = ok(jpost(client, C, {"complaints": "cough", "diagnosis": "Asthma"}, token=d, method="put"))
    assert draft["status"] == "draft" and draft["version"] == 1
    assert jpost(client, C, token=p, method="get").status_code == 404  # a draft is the doctor's alone
    assert ok(jpost(client, "/me/card", token=p, method="get"))["conclusions"] == []

    r = jpost(client, f"{C}/sign", {}, token=d)
    assert r.status_code == 422
    assert {e["field"] for e in body(r)["errors"]} == {"findings", "recommendations"}  # checked at signing

    ok(jpost(client, C, FULL, token=d, method="put"))
    signed = ok(jpost(client, f"{C}/sign", {}, token=d))
    assert signed["status"] == "signed" and signed["signed_at"] and signed["icd10"] == "J45.0"
    r = jpost(client, C, {**FULL, "diagnosis": "Something else"}, token=d, method="put")
    assert r.status_code == 409 and body(r)["code"] == "conclusion_signed"
    assert jpost(client, f"{C}/sign", {}, token=d).status_code == 409

    amended = ok(jpost(client, f"{C}/amendments", {**FULL, "icd10": "J45.1", "observation_months": 12}, token=d),
                 201)
    assert amended["version"] == 2 and amended["supersedes"] == 1 and amended["status"] == "signed"
    versions = ok(jpost(client, C, token=p, method="get"))["items"]
    assert [(v["version"], v["icd10"]) for v in versions] == [(1, "J45.0"), (2, "J45.1")]  # the old one unchanged
    [shown] = ok(jpost(client, "/me/card", token=p, method="get"))["conclusions"]
    assert shown["version"] == 2 and shown["diagnosis"] == FULL["diagnosis"] and shown["observation_months"] == 12

    # nobody else reaches it
    for who in ("other", "doctor_b"):
        assert jpost(client, C, token=w[who]["token"], method="get").status_code == 404, who
    assert jpost(client, C, token=w["admin_a"]["token"], method="get").status_code == 403  # the office: a role
    assert jpost(client, C, FULL, token=w["doctor_b"]["token"], method="put").status_code == 404
    assert jpost(client, C, FULL, token=p, method="put").status_code == 403

    # every write and the doctor's read are in the patient's access log; the patient's reads are not
    before = len(log_items(w))
    ok(jpost(client, C, token=d, method="get"))
    items = log_items(w)
    assert len(items) == before + 1 == 5  # draft, draft, sign, amend, read
    assert [a["action"] for a in items].count("write") == 4
    assert all(a["sections"] == ["conclusions"] and a["booking_id"] == bid for a in items)

    # the treating doctor sees their own conclusion in the shared card without any grant; the diagnosis
    # itself is stored sealed
    card = ok(jpost(client, f"/patients/{w['patient']['user_id']}/card", token=d, method="get"))
    assert [c["version"] for c in card["conclusions"]] == [2] and card["sections"] == {}
    dump = raw_table().lower()
    for secret in ("wheezing", "budesonide", "exacerbation", "j45.1"):
        assert secret not in dump, secret


@pytest.mark.parametrize("payload,field,code", [
    ({"icd10": "j45.0"}, "icd10", "string_pattern_mismatch"),
    ({"icd10": "45J"}, "icd10", "string_pattern_mismatch"),
    ({"icd10": "J45.00000"}, "icd10", "string_too_long"),
    ({"follow_up_date": "2026-11-01"}, "follow_up_date", "not_after_visit"),
    ({"follow_up_date": "2027-01-10", "observation_months": 6}, "observation_months", "one_of"),
    ({"observation_months": 0}, "observation_months", "greater_than_equal"),
    ({"findings": "x" * 8001}, "findings", "string_too_long"),
    ({"prescription": "x"}, "prescription", "unknown_field"),
])
def test_bad_conclusions_are_422_naming_the_field(client, wv, payload, field, code):
    w = wv
    C = f"/bookings/{w['visit']['booking_id']}/conclusion"
    r = jpost(client, C, payload, token=w["doctor"]["token"], method="put")
    assert r.status_code == 422, r.body
    assert (field, code) in [(e["field"], e["code"]) for e in body(r)["errors"]], body(r)
    assert jpost(client, C, token=w["doctor"]["token"], method="get").status_code == 404  # nothing written


def test_conclusions_through_the_access_matrix_and_grant_scope(client, wv, fixed_clock):
    """Staff offices 403, other people 404; another doctor sees signed conclusions only under a grant that
    names them, a draft never; each allowed read is one access event."""
    from datetime import timedelta

    from tests.unit.records_world import grant

    w = wv
    bid, pid = w["visit"]["booking_id"], w["patient"]["user_id"]
    C = f"/bookings/{bid}/conclusion"
    d = w["doctor"]["token"]
    ok(jpost(client, C, FULL, token=d, method="put"))
    for who in ("admin_a", "platform"):
        for method, path, payload in (("get", C, None), ("put", C, FULL), ("post", f"{C}/sign", {}),
                                      ("post", f"{C}/amendments", FULL)):
            r = jpost(client, path, payload, token=w[who]["token"], method=method)
            assert r.status_code == 403 and body(r)["code"] == "role_not_allowed", (who, method, path, r.body)
    for who in ("other", "patient"):
        for method, path, payload in (("put", C, FULL), ("post", f"{C}/sign", {}), ("post", f"{C}/amendments", FULL)):
            assert jpost(client, path, payload, token=w[who]["token"], method=method).status_code == 403
    assert jpost(client, C, token=w["other"]["token"], method="get").status_code == 404
    for method, path, payload in (("get", C, None), ("put", C, FULL), ("post", f"{C}/sign", {}),
                                  ("post", f"{C}/amendments", FULL)):
        assert jpost(client, path, payload, token=w["doctor_b"]["token"], method=method).status_code == 404

    until = (fixed_clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    card = f"/patients/{pid}/card"
    grant(client, w["patient"]["token"], until, doctor_id=w["doctor_b"]["user_id"], sections=["allergies"])
    assert ok(jpost(client, card, token=w["doctor_b"]["token"], method="get"))["conclusions"] == []
    grant(client, w["patient"]["token"], until, doctor_id=w["doctor_b"]["user_id"], sections=["conclusions"])
    assert ok(jpost(client, card, token=w["doctor_b"]["token"], method="get"))["conclusions"] == []  # a draft
    ok(jpost(client, f"{C}/sign", {}, token=d))
    before = len(log_items(w))
    [seen] = ok(jpost(client, card, token=w["doctor_b"]["token"], method="get"))["conclusions"]
    assert seen["status"] == "signed" and seen["diagnosis"] == FULL["diagnosis"]
    after = log_items(w)
    assert len(after) == before + 1 and "conclusions" in after[-1]["sections"]
