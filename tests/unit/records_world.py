"""Builders for medical-card tests: clinic_setup.world() plus what the card's rules need."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import body, jpost, make_staff
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import invite_doctor, ok, world

ALLERGY = {"substance": "Penicillin", "reaction": "hives and swelling", "severity": "severe"}
VACCINE = {"vaccine": "Sputnik V", "date": "2021-03-15", "dose": "2 of 2", "lot": "LOT-77A1"}
CONDITION = {"name": "Bronchial asthma", "status": "active", "since": "2015-06-01"}
MEDICATION = {"name": "Salbutamol inhaler", "dose": "100 mcg as needed", "since": "2015-06-01"}
NOTE = {"text": "Appendectomy at City Hospital No. 3", "date": "2009-08-20"}
ENTRIES = {"allergies": ALLERGY, "vaccinations": VACCINE, "conditions": CONDITION, "medications": MEDICATION,
           "notes": NOTE}
SECRETS = ["Penicillin", "hives", "Sputnik", "LOT-77A1", "asthma", "Salbutamol", "Appendectomy"]


# ------------------------------------------------------------------ one world per module, restored per test
#
# Building the world through the API (sign-ups, authenticator enrolments, a clinic onboarded, a visit) is most
# of a records test's time. A module that imports ``records_module`` and ``backend_env`` from here keeps one
# moto (KMS key, S3 bucket, SNS outbox) and one table name for all its tests; each test starts from an empty
# table, and the first ``records_world`` of the module builds the world through the API and snapshots the
# table (every item as stored), the clock and the world's tokens; later tests get the snapshot written back
# into the empty table. Generated keys (token signing, cursors, hashes) live in a per-module directory, so the
# restored sessions, tokens and hashes stay valid across ``bootstrap.reset()``. A test module that does not
# import them builds the world per test, as before.

_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def records_module(tmp_path_factory):
    from chalicelib.core import aws
    from chalicelib.core.ids import new_id
    from chalicelib.core.table import ensure_table
    from tests.conftest import _moto, base_env, reset_process_state

    mp = pytest.MonkeyPatch()
    table = f"test-{new_id().lower()}"
    env = {**base_env(table, None), "LOCAL_STATE_DIR": str(tmp_path_factory.mktemp("records-keys"))}
    for k, v in env.items():
        mp.setenv(k, v)
    reset_process_state()
    with _moto([]):
        ensure_table(aws.client("dynamodb"), table)
        aws.client("sesv2").create_email_identity(EmailIdentity="clinic.example")
        _SHARED.clear()
        _SHARED.update(env=env, table=table, snapshots={})
        yield _SHARED
        _SHARED.clear()
    reset_process_state()
    mp.undo()


@pytest.fixture
def backend_env(records_module):
    """This module's environment with an empty table (the conftest's fixture of the same name, shared moto)."""
    from chalicelib.core import aws
    from chalicelib.core.table import ensure_table
    from tests.conftest import reset_process_state

    reset_process_state()
    ddb = aws.client("dynamodb")
    ddb.delete_table(TableName=records_module["table"])
    ensure_table(ddb, records_module["table"])
    yield records_module["env"]
    reset_process_state()


def shared(name: str, build, fixed_clock) -> dict[str, Any]:
    """``build()``'s world, remembered per module when the module shares one moto (its KMS key), else per
    test process (tests/worlds.py)."""
    from tests.worlds import remembered

    return remembered(name, build, fixed_clock, _SHARED.get("snapshots"))


def records_world(client, outbox, fixed_clock) -> dict[str, Any]:
    """The clinic world, a second patient, a doctor of clinic B, and a visit of the patient with clinic A's
    doctor (the treating doctor: a booking and a care relation, no grant)."""
    return shared("records_world", lambda: _records_world(client, outbox, fixed_clock), fixed_clock)


def visited_world(client, outbox, fixed_clock) -> dict[str, Any]:
    """``records_world`` after the visit: its doctor marked it completed (everyone signed in again)."""
    def build() -> dict[str, Any]:
        w = records_world(client, outbox, fixed_clock)
        after_the_visit(client, w, fixed_clock)
        return w
    return shared("visited_world", build, fixed_clock)


def _records_world(client, outbox, fixed_clock) -> dict[str, Any]:
    w = world(client, outbox, fixed_clock)
    w["doctor_b"] = make_staff(client, outbox, fixed_clock, "+79110000006", "doctor")
    invite_doctor(client, outbox, w["admin_b"], w["b"]["clinic_id"], w["doctor_b"])
    w["other"] = patient(client, outbox, "+79110000007")
    me = body(jpost(client, "/me", token=w["patient"]["token"], method="get"))
    w["patient"]["user_id"] = me["user_id"]
    start = slots(client, w)[0]["start"]
    w["visit"] = ok(book(client, w, w["patient"]["token"], start), 201)
    return w


def after_the_visit(client, w, fixed_clock) -> None:
    """Move past the visit's start, sign everyone in again, and let its doctor mark it completed."""
    from datetime import datetime, timedelta

    from tests.conftest import relogin

    start = datetime.fromisoformat(w["visit"]["start"]["utc"].replace("Z", "+00:00"))
    fixed_clock.set(start + timedelta(minutes=45))
    for who in ("doctor", "doctor_b", "admin_a", "platform"):
        relogin(client, w[who], fixed_clock)
    for who in ("patient", "other"):
        r = jpost(client, "/auth/refresh", {"refresh_token": w[who]["refresh"]})
        assert r.status_code == 200, r.body
        w[who].update(token=body(r)["access_token"], refresh=body(r)["refresh_token"])
    ok(jpost(client, f"/bookings/{w['visit']['booking_id']}/complete", {}, token=w["doctor"]["token"]))


def fill_card(client, token: str, per_section: int = 1) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for section, entry in ENTRIES.items():
        for _ in range(per_section):
            r = jpost(client, f"/me/card/{section}", entry, token=token)
            assert r.status_code == 201, r.body
            ids.setdefault(section, []).append(body(r)["entry_id"])
    return ids


def grant(client, token: str, until: str, status: int = 201, **who: Any) -> dict[str, Any]:
    return ok(jpost(client, "/me/card-grants", {"until": until, **who}, token=token), status)
