"""Who sees which part of a card, decided in records/access.py, held over every records endpoint.

One world per test (patients, the treating doctor of clinic A, a doctor of clinic B, a clinic administrator,
a platform administrator), grants made and revoked as a patient would, and after every request the
access log counted: every allowed read or write by someone other than the patient adds exactly one item,
every denied one adds none and changes nothing.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import body, jpost, relogin
from tests.unit.clinic_setup import ok
from tests.unit.records_world import (  # noqa: F401  (one world per module)
    ALLERGY,
    ENTRIES,
    MEDICATION,
    backend_env,
    fill_card,
    grant,
    records_module,
    records_world,
)

SECTIONS = set(ENTRIES)


@pytest.fixture
def w(client, outbox, fixed_clock):
    w = records_world(client, outbox, fixed_clock)
    fill_card(client, w["patient"]["token"])
    return w


def log_items(w) -> list[dict]:
    from chalicelib.core import db
    from chalicelib.records import store

    return db.query_prefix(store.log_pk(w["patient"]["user_id"]), "")


def card_items(w) -> list[dict]:
    from chalicelib.records import store

    return store.read_card(w["patient"]["user_id"])[0]


def later(fixed_clock, **delta) -> str:
    return (fixed_clock.now() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ledger:
    """Requests that assert their status and exactly how many access-log items they added."""

    def __init__(self, client, w) -> None:
        self.client, self.w = client, w
        self.count = len(log_items(w))

    def ask(self, who: str, method: str, path: str, status: int, events: int, payload=None, code=None):
        before_card = len(card_items(self.w))
        r = jpost(self.client, path, payload, token=self.w[who]["token"], method=method)
        assert r.status_code == status, (who, method, path, r.status_code, r.body)
        if code:
            assert body(r)["code"] == code, (who, path, r.body)
        now = len(log_items(self.w))
        assert now - self.count == events, (who, method, path, f"{now - self.count} access events, not {events}")
        self.count = now
        if status >= 400:
            assert len(card_items(self.w)) == before_card, "a denied request changed the card"
        return body(r)


def test_the_access_matrix_over_every_records_endpoint(client, w, fixed_clock):
    pid = w["patient"]["user_id"]
    card = f"/patients/{pid}/card"
    L = Ledger(client, w)
    mine_card = ok(jpost(client, "/me/card", token=w["patient"]["token"], method="get"))
    eid = mine_card["sections"]["allergies"][0]["entry_id"]

    # --- patient-only endpoints: staff 403, another patient's objects 404
    g0 = grant(client, w["patient"]["token"], later(fixed_clock, days=1), doctor_id=w["doctor_b"]["user_id"],
               sections=["notes"])
    L.ask("patient", "delete", f"/me/card-grants/{g0['grant_id']}", 204, 0)
    own = [("get", "/me/card", None), ("post", "/me/card/allergies", ALLERGY),
           ("put", f"/me/card/allergies/{eid}", ALLERGY), ("get", f"/me/card/allergies/{eid}/versions", None),
           ("post", "/me/card-grants", {"doctor_id": w["doctor"]["user_id"], "until": later(fixed_clock, days=1)}),
           ("get", "/me/card-grants", None), ("delete", f"/me/card-grants/{g0['grant_id']}", None),
           ("get", "/me/card-access-log", None)]
    for who in ("doctor", "doctor_b", "admin_a", "platform"):
        for method, path, payload in own:
            L.ask(who, method, path, 403, 0, payload, code="role_not_allowed")
    for method, path, payload in own:
        if "{" not in path and (eid in path or g0["grant_id"] in path):
            L.ask("other", method, path, 404, 0, payload)
    assert ok(jpost(client, "/me/card-grants", token=w["other"]["token"], method="get"))["items"] == []
    assert all(v == [] for v in ok(jpost(client, "/me/card", token=w["other"]["token"],
                                         method="get"))["sections"].values())

    # --- no grant: the treating doctor (a booking and a care relation) sees nothing; nor does anyone else
    L.ask("doctor", "get", card, 404, 0)
    for who in ("doctor", "doctor_b", "other"):
        L.ask(who, "get", f"{card}/export", 404, 0)
    L.ask("doctor", "post", f"{card}/medications", 404, 0, MEDICATION)
    L.ask("doctor_b", "get", card, 404, 0)
    L.ask("other", "get", card, 404, 0)
    L.ask("other", "post", f"{card}/medications", 403, 0, MEDICATION, code="role_not_allowed")
    for who in ("admin_a", "platform"):
        L.ask(who, "get", card, 403, 0, code="role_not_allowed")
        L.ask(who, "post", f"{card}/medications", 403, 0, MEDICATION, code="role_not_allowed")
        L.ask(who, "get", f"{card}/export", 403, 0, code="role_not_allowed")
    assert set(L.ask("patient", "get", card, 200, 0)["sections"]) == SECTIONS  # the patient's own read: no event

    # --- an active grant to the doctor for two sections: each section in and out of scope
    g1 = grant(client, w["patient"]["token"], later(fixed_clock, days=30), doctor_id=w["doctor"]["user_id"],
               sections=["allergies", "medications"])
    seen = L.ask("doctor", "get", card, 200, 1)
    assert set(seen["sections"]) == {"allergies", "medications"}
    assert seen["sections"]["allergies"][0]["data"]["substance"] == "Penicillin"
    for section in SECTIONS - {"allergies", "medications"}:
        L.ask("doctor", "post", f"{card}/{section}", 403, 0, ENTRIES[section], code="section_not_shared")
    mine = L.ask("doctor", "post", f"{card}/medications", 201,
                 1, {"name": "Bisoprolol", "dose": "5 mg", "since": "2026-11-20"})
    assert mine["created"]["role"] == "doctor" and mine["created"]["by"] == w["doctor"]["user_id"]
    L.ask("doctor_b", "get", card, 404, 0)  # a grant to one doctor opens nothing to another
    L.ask("doctor_b", "get", f"{card}/export", 404, 0)
    L.ask("admin_a", "get", card, 403, 0)

    # --- a whole-clinic grant to clinic B: its doctor reads; clinic A's doctor gains nothing from it
    g2 = grant(client, w["patient"]["token"], later(fixed_clock, hours=1), clinic_id=w["b"]["clinic_id"],
               sections=["vaccinations"])
    assert set(L.ask("doctor_b", "get", card, 200, 1)["sections"]) == {"vaccinations"}
    exported = L.ask("doctor_b", "get", f"{card}/export", 200, 1)
    assert {e["resource"]["resourceType"] for e in exported["entry"]} == {"Patient", "Immunization", "Consent"}
    assert set(L.ask("doctor", "get", card, 200, 1)["sections"]) == {"allergies", "medications"}
    L.ask("admin_b", "get", card, 403, 0)  # the clinic's office is not its doctors

    # --- revoked: at once, the doctor keeps only what they wrote themselves
    L.ask("patient", "delete", f"/me/card-grants/{g1['grant_id']}", 204, 0)
    after = L.ask("doctor", "get", card, 200, 1)
    assert list(after["sections"]) == ["medications"]
    assert [e["entry_id"] for e in after["sections"]["medications"]] == [mine["entry_id"]]
    L.ask("doctor", "post", f"{card}/allergies", 404, 0, ALLERGY)
    L.ask("doctor", "get", f"{card}/export", 404, 0)  # their own entry is no grant: nothing to export

    # --- expired: clinic B's grant ended an hour on
    fixed_clock.advance(minutes=61)
    for who in ("doctor", "doctor_b"):
        relogin(client, w[who], fixed_clock)
    w["patient"]["token"] = body(jpost(client, "/auth/refresh", {"refresh_token": w["patient"]["refresh"]}))[
        "access_token"]
    L.ask("doctor_b", "get", card, 404, 0)
    L.ask("doctor_b", "get", f"{card}/export", 404, 0)
    statuses = {g["grant_id"]: g["status"] for g in
                ok(jpost(client, "/me/card-grants", token=w["patient"]["token"], method="get"))["items"]}
    assert statuses == {g0["grant_id"]: "revoked", g1["grant_id"]: "revoked", g2["grant_id"]: "expired"}

    # --- the log the patient sees: one item per allowed read or write, who, role, clinic, grant, sections
    log = ok(jpost(client, "/me/card-access-log?limit=100", token=w["patient"]["token"], method="get"))["items"]
    assert len(log) == L.count == 6
    oldest = log[::-1]
    d, db_ = w["doctor"]["user_id"], w["doctor_b"]["user_id"]
    assert [(a["actor_id"], a["action"]) for a in oldest] == [(d, "read"), (d, "write"), (db_, "read"),
                                                              (db_, "export"), (d, "read"), (d, "read")]
    assert oldest[3]["sections"] == ["vaccinations"] and oldest[3]["grant_ids"] == [g2["grant_id"]]
    assert oldest[0]["grant_ids"] == [g1["grant_id"]] and oldest[0]["sections"] == ["allergies", "medications"]
    assert oldest[1]["entries"] == [mine["entry_id"]] and oldest[1]["sections"] == ["medications"]
    assert oldest[2]["clinic_id"] == w["b"]["clinic_id"] and oldest[2]["grant_ids"] == [g2["grant_id"]]
    assert oldest[-1]["grant_ids"] == [] and oldest[-1]["sections"] == ["medications"]
    assert {a["actor_role"] for a in log} == {"doctor"}


def test_the_access_log_pages_with_bound_cursors_and_no_api_changes_it(client, w, fixed_clock):
    pid = w["patient"]["user_id"]
    grant(client, w["patient"]["token"], later(fixed_clock, days=10), doctor_id=w["doctor"]["user_id"])
    for _ in range(7):
        ok(jpost(client, f"/patients/{pid}/card", token=w["doctor"]["token"], method="get"))
    t = w["patient"]["token"]
    first = ok(jpost(client, "/me/card-access-log?limit=3", token=t, method="get"))
    second = ok(jpost(client, f"/me/card-access-log?limit=3&cursor={first['next_cursor']}", token=t, method="get"))
    third = ok(jpost(client, f"/me/card-access-log?limit=3&cursor={second['next_cursor']}", token=t, method="get"))
    ids = [a["access_id"] for p in (first, second, third) for a in p["items"]]
    assert len(ids) == len(set(ids)) == 7 and third["next_cursor"] is None
    r = jpost(client, f"/me/card-grants?cursor={first['next_cursor']}", token=t, method="get")
    assert r.status_code == 400 and body(r)["errors"][0]["field"] == "cursor"  # a cursor of another list
    r = jpost(client, f"/me/card-access-log?cursor={first['next_cursor']}", token=w["other"]["token"], method="get")
    assert r.status_code == 400  # another patient's log is another list
    for method in ("delete", "put", "patch", "post"):
        assert jpost(client, "/me/card-access-log", {}, token=t, method=method).status_code == 405
    assert len(log_items(w)) == 7


@pytest.mark.parametrize("payload,field,code", [
    ({"until": "2026-11-24T05:00:00Z"}, "until", "in_past"),
    ({"until": "2028-01-01T00:00:00Z"}, "until", "too_far"),
    ({"until": "2026-12-24T00:00:00"}, "until", "timezone_aware"),
    ({"sections": ["allergies", "surgeries"]}, "sections[1]", "literal_error"),
    ({"sections": ["a"] * 10_000}, "sections", "too_long"),  # a 10,000-entry list within the body limit
    ({"sections": ["notes", "notes"]}, "sections", "duplicate"),
    ({"sections": []}, "sections", "too_short"),
    ({"doctor_id": None}, "doctor_id", "one_grantee"),
    ({"clinic_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2B"}, "doctor_id", "one_grantee"),
    ({"doctor_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2B"}, "doctor_id", "unknown_doctor"),
    ({"doctor_id": "not-a-ulid"}, "doctor_id", "string_pattern_mismatch"),
])
def test_bad_grants_are_422_naming_the_field_and_open_nothing(client, w, fixed_clock, payload, field, code):
    base = {"doctor_id": w["doctor"]["user_id"], "until": later(fixed_clock, days=30)}
    r = jpost(client, "/me/card-grants", {**base, **payload}, token=w["patient"]["token"])
    assert r.status_code == 422, r.body
    assert (field, code) in [(e["field"], e["code"]) for e in body(r)["errors"]], body(r)
    assert ok(jpost(client, "/me/card-grants", token=w["patient"]["token"], method="get"))["items"] == []
    r = jpost(client, f"/patients/{w['patient']['user_id']}/card", token=w["doctor"]["token"], method="get")
    assert r.status_code == 404
