"""The card as a FHIR R4 Bundle: parsed and validated by fhir.resources (R4B), every reference resolves."""
from __future__ import annotations

import json
from datetime import timedelta

from tests.conftest import jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import backend_env, fill_card, grant, records_module, visited_world  # noqa: F401  (one world per module)
from tests.unit.test_records_conclusions import FULL


def references(node, found=None):
    found = [] if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for v in node.values():
            references(v, found)
    elif isinstance(node, list):
        for v in node:
            references(v, found)
    return found


def test_the_export_is_a_valid_r4_bundle_whose_references_resolve(client, outbox, fixed_clock):
    from fhir.resources.R4B.bundle import Bundle

    w = visited_world(client, outbox, fixed_clock)
    fill_card(client, w["patient"]["token"])
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    C = f"/bookings/{w['visit']['booking_id']}/conclusion"
    ok(jpost(client, C, FULL, token=w["doctor"]["token"], method="put"))
    ok(jpost(client, f"{C}/sign", {}, token=w["doctor"]["token"]))
    ok(jpost(client, f"{C}/amendments", {**FULL, "icd10": "J45.1"}, token=w["doctor"]["token"]), 201)
    until = (fixed_clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    g = grant(client, t, until, doctor_id=w["doctor_b"]["user_id"], sections=["allergies", "conclusions"])
    grant(client, t, until, clinic_id=w["a"]["clinic_id"])
    ok(jpost(client, f"/patients/{pid}/card", token=w["doctor_b"]["token"], method="get"))
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)

    r = jpost(client, "/me/card/export", token=t, method="get")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fhir+json"
    data = json.loads(r.body)
    parsed = Bundle.model_validate(data)  # R4B: types, cardinalities, required elements
    assert parsed.type == "collection"
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    for kind, n in (("Patient", 1), ("AllergyIntolerance", 1), ("Immunization", 1), ("Condition", 1),
                    ("MedicationStatement", 1), ("Procedure", 1), ("Encounter", 1), ("Composition", 1),
                    ("Consent", 2), ("AuditEvent", 4)):  # draft, sign, amend; one read
        assert kinds.count(kind) == n, (kind, kinds.count(kind))
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["entry"]}
    refs = references(data)
    assert refs and set(refs) <= present, set(refs) - present
    comp = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Composition")
    assert comp["status"] == "amended" and comp["encounter"]["reference"] == f"Encounter/{w['visit']['booking_id']}"
    assert any(s.get("code", {}).get("coding", [{}])[0].get("code") == "J45.1" for s in comp["section"])
    consents = {e["resource"]["id"]: e["resource"]["status"] for e in data["entry"]
                if e["resource"]["resourceType"] == "Consent"}
    assert consents[g["grant_id"]] == "inactive" and sorted(consents.values()) == ["active", "inactive"]
    allergy = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "AllergyIntolerance")
    assert allergy["code"]["text"] == "Penicillin" and allergy["reaction"][0]["severity"] == "severe"
    for who in ("doctor", "admin_a", "platform"):
        assert jpost(client, "/me/card/export", token=w[who]["token"], method="get").status_code == 403


def test_a_doctor_exports_what_their_grant_covers_as_a_valid_bundle(client, outbox, fixed_clock):
    from fhir.resources.R4B.bundle import Bundle

    from tests.unit.test_records_access import log_items

    w = visited_world(client, outbox, fixed_clock)
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    fill_card(client, t)
    C = f"/bookings/{w['visit']['booking_id']}/conclusion"
    ok(jpost(client, C, FULL, token=w["doctor"]["token"], method="put"))
    ok(jpost(client, f"{C}/sign", {}, token=w["doctor"]["token"]))
    until = (fixed_clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    g = grant(client, t, until, doctor_id=w["doctor_b"]["user_id"], sections=["allergies", "conclusions"])
    other = grant(client, t, until, clinic_id=w["a"]["clinic_id"], sections=["notes"])  # not doctor B's
    before = len(log_items(w))

    r = jpost(client, f"/patients/{pid}/card/export", token=w["doctor_b"]["token"], method="get")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fhir+json"
    data = json.loads(r.body)
    assert Bundle.model_validate(data).type == "collection"
    kinds = sorted(e["resource"]["resourceType"] for e in data["entry"])
    assert kinds == ["AllergyIntolerance", "Composition", "Consent", "Encounter", "Patient"], kinds
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["entry"]}
    assert set(references(data)) <= present
    consent = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Consent")
    assert consent["id"] == g["grant_id"] != other["grant_id"]
    assert [c["code"] for c in consent["provision"]["class"]] == ["allergies", "conclusions"]
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    for hidden in ("Sputnik", "Salbutamol", "Appendectomy", "Bronchial asthma"):
        assert hidden not in text, hidden  # vaccinations, medications, notes, conditions: not granted
    log = log_items(w)
    assert len(log) == before + 1
    newest = max(log, key=lambda a: a["SK"])
    assert (newest["actor_id"], newest["action"], newest["sections"], newest["grant_ids"]) == \
        (w["doctor_b"]["user_id"], "export", ["allergies", "conclusions"], [g["grant_id"]])

    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    assert jpost(client, f"/patients/{pid}/card/export", token=w["doctor_b"]["token"], method="get").status_code == 404
    assert len(log_items(w)) == before + 1
