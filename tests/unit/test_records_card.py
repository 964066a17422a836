"""The medical card as a patient keeps it: sections, versions, encryption at rest, bad input."""
from __future__ import annotations

import json

import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import (  # noqa: F401  (one world per module)
    ALLERGY,
    ENTRIES,
    SECRETS,
    VACCINE,
    backend_env,
    fill_card,
    records_module,
    records_world,
)


@pytest.fixture
def w(client, outbox, fixed_clock):
    return records_world(client, outbox, fixed_clock)


def raw_table() -> str:
    """Every item of the table as stored, attribute values and all (a dump, as an operator would see it)."""
    from chalicelib.core import db

    items, start = [], None
    while True:
        kw = {"TableName": db.table_name(), **({"ExclusiveStartKey": start} if start else {})}
        resp = db.ddb().scan(**kw)
        items += resp["Items"]
        start = resp.get("LastEvaluatedKey")
        if not start:
            return json.dumps(items, ensure_ascii=False)


def test_the_patient_fills_every_section_and_reads_the_whole_card(client, w):
    t = w["patient"]["token"]
    fill_card(client, t)
    card = ok(jpost(client, "/me/card", token=t, method="get"))
    assert set(card["sections"]) == set(ENTRIES)
    for section, entry in ENTRIES.items():
        [got] = card["sections"][section]
        assert {k: got["data"][k] for k in entry} == entry
        assert got["created"]["by"] == w["patient"]["user_id"] and got["created"]["role"] == "patient"
        assert got["created"]["at"] == "2026-11-24T06:00:00Z" or got["created"]["at"] > "2026-11-24"
    assert card["sections"]["allergies"][0]["data"]["kind"] == "allergy"  # the default, stored


def test_an_edit_keeps_the_earlier_version_with_who_wrote_it_and_when(client, w, fixed_clock):
    t = w["patient"]["token"]
    eid = ok(jpost(client, "/me/card/allergies", ALLERGY, token=t), 201)["entry_id"]
    fixed_clock.advance(minutes=10)
    changed = {**ALLERGY, "severity": "moderate", "reaction": "rash"}
    after = ok(jpost(client, f"/me/card/allergies/{eid}", changed, token=t, method="put"))
    assert after["version"] == 2 and after["data"]["severity"] == "moderate"
    assert after["written"]["at"] > after["created"]["at"]
    versions = ok(jpost(client, f"/me/card/allergies/{eid}/versions", token=t, method="get"))["items"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["data"]["severity"] == "severe" and versions[0]["data"]["reaction"] == "hives and swelling"
    [current] = ok(jpost(client, "/me/card", token=t, method="get"))["sections"]["allergies"]
    assert current["version"] == 2 and current["data"]["reaction"] == "rash"
    # another patient cannot edit it, nor see its versions
    o = w["other"]["token"]
    assert jpost(client, f"/me/card/allergies/{eid}", changed, token=o, method="put").status_code == 404
    assert jpost(client, f"/me/card/allergies/{eid}/versions", token=o, method="get").status_code == 404


def test_nothing_of_the_card_is_stored_in_clear_text(client, w):
    t = w["patient"]["token"]
    ids = fill_card(client, t)
    ok(jpost(client, f"/me/card/allergies/{ids['allergies'][0]}", {**ALLERGY, "reaction": "hives again"}, token=t,
             method="put"))
    dump = raw_table()
    assert "card_entry_version" in dump and "ENTRY#allergies" in dump  # the card is in the dump...
    for secret in SECRETS:  # ...and none of what it says
        assert secret.lower() not in dump.lower(), secret


def test_a_sealed_entry_opens_only_as_its_own_patient_and_section(client, w):
    """The ciphertext is bound to its item and the data key to (patient, section) by KMS's encryption context:
    an entry copied into another patient's card, or another section, does not open."""
    from botocore.exceptions import ClientError

    from chalicelib import bootstrap
    from chalicelib.records import store

    t = w["patient"]["token"]
    eid = ok(jpost(client, "/me/card/allergies", ALLERGY, token=t), 201)["entry_id"]
    e = store.get_entry(w["patient"]["user_id"], "allergies", eid)
    sealer = bootstrap.sealer()
    aad = f"{e['patient_id']}|allergies|{eid}|1"
    assert json.loads(sealer.open(e["patient_id"], "allergies", aad, e["sealed"]))["substance"] == "Penicillin"
    bootstrap.reset()  # a fresh container: no cached data key
    sealer = bootstrap.sealer()
    for pid, section in ((w["other"]["user_id"], "allergies"), (e["patient_id"], "conditions")):
        with pytest.raises(ClientError) as refused:
            sealer.open(pid, section, f"{pid}|{section}|{eid}|1", e["sealed"])
        assert refused.value.response["Error"]["Code"] == "InvalidCiphertextException"
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):  # the right key, but the ciphertext moved onto another entry of the section
        sealer.open(e["patient_id"], "allergies", f"{e['patient_id']}|allergies|{'0' * 26}|1", e["sealed"])


@pytest.mark.parametrize("path,payload,field,code", [
    ("/me/card/surgeries", {"text": "x"}, "section", "unknown_section"),
    ("/me/card/vaccinations", {**VACCINE, "date": "2026-12-25"}, "date", "in_future"),
    ("/me/card/conditions", {"name": "Gastritis", "status": "active", "since": "2027-01-01"}, "since", "in_future"),
    ("/me/card/medications", {"name": "Omeprazole", "since": "2026-01-10", "until": "2025-01-01"}, "until",
     "before_since"),
    ("/me/card/allergies", {**ALLERGY, "severity": "deadly"}, "severity", "literal_error"),
    ("/me/card/allergies", {**ALLERGY, "colour": "red"}, "colour", "unknown_field"),
    ("/me/card/notes", {"text": "x" * 4001}, "text", "string_too_long"),
])
def test_bad_entries_are_422_naming_the_field_and_write_nothing(client, w, path, payload, field, code):
    t = w["patient"]["token"]
    r = jpost(client, path, payload, token=t)
    assert r.status_code == 422, r.body
    p = body(r)
    assert r.headers["Content-Type"] == "application/problem+json"
    assert (field, code) in [(e["field"], e["code"]) for e in p["errors"]]
    card = ok(jpost(client, "/me/card", token=t, method="get"))
    assert all(v == [] for v in card["sections"].values())


def test_staff_and_platform_keep_no_card_of_their_own(client, w):
    for who in ("doctor", "admin_a", "platform"):
        r = jpost(client, "/me/card", token=w[who]["token"], method="get")
        assert r.status_code == 403 and body(r)["code"] == "role_not_allowed", who
        r = jpost(client, "/me/card/allergies", ALLERGY, token=w[who]["token"])
        assert r.status_code == 403, who


def test_a_section_refuses_entries_past_its_cap(client, w, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setattr(bootstrap.settings(), "records_entries_per_section_max", 3)
    t = w["patient"]["token"]
    for _ in range(3):
        ok(jpost(client, "/me/card/notes", {"text": "note"}, token=t), 201)
    r = jpost(client, "/me/card/notes", {"text": "one too many"}, token=t)
    assert r.status_code == 409 and body(r)["code"] == "section_full"
    assert len(ok(jpost(client, "/me/card", token=t, method="get"))["sections"]["notes"]) == 3
    ok(jpost(client, "/me/card/allergies", ALLERGY, token=t), 201)  # other sections are counted apart
