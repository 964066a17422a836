"""Documents on the card and on a visit, uploaded by the patient or by a doctor (onto their completed visit,
or into the card under a grant naming documents), and exported as FHIR DocumentReference resources."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import after_the_visit, backend_env, grant, records_module, records_world, visited_world  # noqa: F401  (one world per module)
from tests.unit.test_records_access import log_items
from tests.unit.test_records_conclusions import FULL
from tests.unit.test_records_documents import upload_as_the_browser_would

SCAN = {"name": "Spirometry 2026-11.pdf", "content_type": "application/pdf", "size_bytes": 1000}


@pytest.fixture
def w(client, outbox, fixed_clock):
    return visited_world(client, outbox, fixed_clock)


def _upload(client, base: str, token: str, payload: dict) -> dict:
    doc = ok(jpost(client, f"{base}/documents", payload, token=token), 201)
    upload_as_the_browser_would(doc["upload"], b"%PDF-" + b"x" * (payload["size_bytes"] - 5))
    return ok(jpost(client, f"{base}/documents/{doc['document_id']}/complete", {}, token=token))


def test_the_visits_doctor_attaches_a_document_to_it_without_a_grant_and_the_patient_sees_it(client, w, fixed_clock):
    pid, bid = w["patient"]["user_id"], w["visit"]["booking_id"]
    base, doc = f"/patients/{pid}/card", w["doctor"]["token"]
    before = len(log_items(w))
    d = _upload(client, base, doc, {**SCAN, "booking_id": bid})
    assert d["status"] == "available" and d["booking_id"] == bid and d["created"]["role"] == "doctor"
    [event] = log_items(w)[before:]
    assert event["action"] == "write" and event["sections"] == ["documents"] and event["entries"] == [d["document_id"]]
    [seen] = ok(jpost(client, "/me/card", token=w["patient"]["token"], method="get"))["documents"]
    assert seen["document_id"] == d["document_id"] and seen["booking_id"] == bid
    # the uploader sees what they wrote (and may hand out its link); nothing else of the card opened
    card = ok(jpost(client, base, token=doc, method="get"))
    assert [x["document_id"] for x in card["documents"]] == [d["document_id"]] and card["sections"] == {}
    link = ok(jpost(client, f"{base}/documents/{d['document_id']}/download", token=doc, method="get"))
    assert parse_qs(urlparse(link["url"]).query)["X-Amz-Expires"] == ["300"]

    # without a grant the doctor cannot put anything into the card outside their visit
    assert jpost(client, f"{base}/documents", SCAN, token=doc).status_code == 404
    # another clinic's doctor: not their visit (422 naming it), and no grant (404)
    other = w["doctor_b"]["token"]
    r = jpost(client, f"{base}/documents", {**SCAN, "booking_id": bid}, token=other)
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "booking_id"
    assert jpost(client, f"{base}/documents", SCAN, token=other).status_code == 404
    # nobody else confirms the doctor's pending upload, not even the patient whose card it is
    pending = ok(jpost(client, f"{base}/documents", {**SCAN, "booking_id": bid}, token=doc), 201)
    assert jpost(client, f"/me/card/documents/{pending['document_id']}/complete", {},
                 token=w["patient"]["token"]).status_code == 404
    for who in ("admin_a", "platform"):
        assert jpost(client, f"{base}/documents", SCAN, token=w[who]["token"]).status_code == 403
    assert jpost(client, f"{base}/documents", SCAN, token=w["other"]["token"]).status_code == 404


def test_a_grant_naming_documents_lets_a_doctor_upload_into_the_card_until_it_is_revoked(client, w, fixed_clock):
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    base, other = f"/patients/{pid}/card", w["doctor_b"]["token"]
    until = (fixed_clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant(client, t, until, doctor_id=w["doctor_b"]["user_id"], sections=["allergies"])
    assert jpost(client, f"{base}/documents", SCAN, token=other).status_code == 404  # documents not in scope
    g = grant(client, t, until, clinic_id=w["b"]["clinic_id"], sections=["documents"])  # whole clinic B
    d = _upload(client, base, other, SCAN)
    assert "booking_id" not in d
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    assert jpost(client, f"{base}/documents", SCAN, token=other).status_code == 404  # revoked: at once
    # the patient's documents stay out of the doctor's reach now, even with the key guessed through another card
    mine = _upload(client, "/me/card", t, SCAN)
    other_pid = ok(jpost(client, "/me", token=w["other"]["token"], method="get"))["user_id"]
    guessed = f"/patients/{other_pid}/card/documents/{mine['document_id']}/download"
    assert jpost(client, guessed, token=other, method="get").status_code == 404
    assert jpost(client, guessed, token=w["other"]["token"], method="get").status_code == 404
    # the patient attaches to their own visit; someone else's visit is refused naming the field
    bid = w["visit"]["booking_id"]
    assert _upload(client, "/me/card", t, {**SCAN, "booking_id": bid})["booking_id"] == bid
    r = jpost(client, "/me/card/documents", {**SCAN, "booking_id": bid}, token=w["other"]["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "booking_id"


def test_documents_are_document_references_in_the_export_with_short_lived_links(client, w):
    from fhir.resources.R4B.bundle import Bundle

    from tests.unit.test_records_export import references

    t, pid, bid, doc = w["patient"]["token"], w["patient"]["user_id"], w["visit"]["booking_id"], w["doctor"]["token"]
    C = f"/bookings/{bid}/conclusion"
    ok(jpost(client, C, FULL, token=doc, method="put"))
    ok(jpost(client, f"{C}/sign", {}, token=doc))
    on_visit = _upload(client, f"/patients/{pid}/card", doc, {**SCAN, "booking_id": bid})
    own = _upload(client, "/me/card", t, {**SCAN, "name": "X-ray.png", "content_type": "image/png"})
    ok(jpost(client, "/me/card/documents", SCAN, token=t), 201)  # announced, never uploaded: not exported
    r = jpost(client, "/me/card/export", token=t, method="get")
    assert r.status_code == 200
    data = json.loads(r.body)
    Bundle.model_validate(data)
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["entry"]}
    assert set(references(data)) <= present
    refs = {e["resource"]["id"]: e["resource"] for e in data["entry"]
            if e["resource"]["resourceType"] == "DocumentReference"}
    assert set(refs) == {on_visit["document_id"], own["document_id"]}
    visit_doc = refs[on_visit["document_id"]]
    assert visit_doc["context"]["encounter"][0]["reference"] == f"Encounter/{bid}"
    att = refs[own["document_id"]]["content"][0]["attachment"]
    assert att["contentType"] == "image/png" and att["title"] == "X-ray.png" and att["size"] == 1000
    q = parse_qs(urlparse(att["url"]).query)
    assert q["X-Amz-Expires"] == ["300"] and urlparse(att["url"]).path.endswith(f"/records/{pid}/{own['document_id']}")
