"""Builders for medical-card tests: clinic_setup.world() plus what the card's rules need."""
from __future__ import annotations

from typing import Any

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


def records_world(client, outbox, fixed_clock) -> dict[str, Any]:
    """The clinic world, a second patient, a doctor of clinic B, and a visit of the patient with clinic A's
    doctor (the treating doctor: a booking and a care relation, no grant)."""
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
