"""Edits conditioned on what the client read: ETag = the entry's version (or the conclusion's revision),
If-Match on edits, 412 on a mismatch; a patient's deletion is a tombstone version, a doctor's entry is kept."""
from __future__ import annotations

import pytest

from tests.conftest import body, jpost
from tests.unit.booking_setup import patient
from tests.unit.clinic_setup import ok
from tests.unit.records_world import ALLERGY, after_the_visit, backend_env, records_module, records_world, visited_world  # noqa: F401  (one world per module)


def put(client, path, data, token, tag=None):
    return jpost(client, path, data, token=token, method="put", headers={"If-Match": tag} if tag else None)


def test_an_entry_edit_with_a_stale_etag_is_412_and_changes_nothing(client, outbox):
    t = patient(client, outbox, "+79120000101")["token"]
    r = jpost(client, "/me/card/allergies", ALLERGY, token=t)
    assert r.status_code == 201 and r.headers["ETag"] == '"1"'
    eid = body(r)["entry_id"]
    E = f"/me/card/allergies/{eid}"
    r = put(client, E, {**ALLERGY, "severity": "mild"}, t, '"1"')
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    # a second device still holding version 1 is refused, not silently overwriting the first one's edit
    r = put(client, E, {**ALLERGY, "severity": "moderate"}, t, '"1"')
    assert r.status_code == 412 and body(r)["code"] == "precondition_failed"
    [e] = ok(jpost(client, "/me/card", token=t, method="get"))["sections"]["allergies"]
    assert e["version"] == 2 and e["data"]["severity"] == "mild"
    r = put(client, E, {**ALLERGY, "severity": "moderate"}, t, 'W/"2"')
    assert r.status_code == 200 and r.headers["ETag"] == '"3"'
    r = put(client, E, ALLERGY, t, "yesterday")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "If-Match"


def test_a_patient_deletes_their_own_entry_as_a_tombstone_and_the_section_has_room_again(client, outbox, monkeypatch):
    from chalicelib import bootstrap
    from chalicelib.records import store

    monkeypatch.setattr(bootstrap.records().settings, "records_entries_per_section_max", 1)
    p = patient(client, outbox, "+79120000102")
    t = p["token"]
    eid = ok(jpost(client, "/me/card/allergies", ALLERGY, token=t), 201)["entry_id"]
    assert jpost(client, "/me/card/allergies", ALLERGY, token=t).status_code == 409  # full
    E = f"/me/card/allergies/{eid}"
    assert jpost(client, E, token=t, method="delete", headers={"If-Match": '"7"'}).status_code == 412
    assert jpost(client, E, token=t, method="delete", headers={"If-Match": '"1"'}).status_code == 204
    assert ok(jpost(client, "/me/card", token=t, method="get"))["sections"]["allergies"] == []
    assert jpost(client, E, token=t, method="delete").status_code == 404
    assert put(client, E, ALLERGY, t).status_code == 404
    # the history keeps the last version and the tombstone (sealed, no content), nothing in the card partition
    hist = store.entry_versions(p["user_id"], "allergies", eid)
    assert [int(v["version"]) for v in hist] == [1, 2] and hist[-1]["deleted"] is True
    assert store.get_entry(p["user_id"], "allergies", eid) is None
    assert jpost(client, "/me/card/allergies", ALLERGY, token=t).status_code == 201  # room again


@pytest.fixture
def w(client, outbox, fixed_clock):
    return visited_world(client, outbox, fixed_clock)


def test_conclusion_edits_and_signing_are_conditioned_on_the_revision_read(client, w):
    doc, bid = w["doctor"]["token"], w["visit"]["booking_id"]
    C = f"/bookings/{bid}/conclusion"
    full = {"complaints": "cough", "findings": "wheezing", "diagnosis": "asthma", "recommendations": "inhaler"}
    r = put(client, C, full, doc)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"' and body(r)["revision"] == 1
    r = put(client, C, {**full, "findings": "wheezing, both lungs"}, doc, '"1"')
    assert r.headers["ETag"] == '"2"'
    # a second tab that read revision 1 can neither overwrite nor sign what it did not see
    assert put(client, C, {**full, "findings": "clear"}, doc, '"1"').status_code == 412
    r = jpost(client, C + "/sign", {}, token=doc, headers={"If-Match": '"1"'})
    assert r.status_code == 412 and body(r)["code"] == "precondition_failed"
    [draft] = ok(jpost(client, C, token=doc, method="get"))["items"]
    assert draft["status"] == "draft" and draft["findings"] == "wheezing, both lungs"
    r = jpost(client, C + "/sign", {}, token=doc, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"3"' and body(r)["findings"] == "wheezing, both lungs"
    amended = {**full, "diagnosis": "asthma, mild"}
    r = jpost(client, C + "/amendments", amended, token=doc, headers={"If-Match": '"2"'})
    assert r.status_code == 412
    r = jpost(client, C + "/amendments", amended, token=doc, headers={"If-Match": '"3"'})
    assert r.status_code == 201 and r.headers["ETag"] == '"4"' and body(r)["version"] == 2


def test_a_doctor_entry_in_the_card_is_kept_when_the_patient_deletes(client, w):
    from tests.unit.records_world import grant

    p, doc = w["patient"]["token"], w["doctor"]["token"]
    from datetime import timedelta

    from chalicelib.core import clock

    grant(client, p, clock.iso(clock.now() + timedelta(days=30)), doctor_id=w["doctor"]["user_id"])
    pid = w["patient"]["user_id"]
    eid = ok(jpost(client, f"/patients/{pid}/card/allergies", ALLERGY, token=doc), 201)["entry_id"]
    r = jpost(client, f"/me/card/allergies/{eid}", token=p, method="delete")
    assert r.status_code == 403 and body(r)["code"] == "entry_kept"
    assert len(ok(jpost(client, "/me/card", token=p, method="get"))["sections"]["allergies"]) == 1
