"""Builders for booking tests on top of the onboarded clinic of clinic_setup.world()."""
from __future__ import annotations

from typing import Any

from tests.conftest import body, jpost, sign_up
from tests.unit.clinic_setup import ok

MONDAY = "2026-11-30"  # the world's clock starts on Tuesday 2026-11-24 06:00 UTC


def slots(client, w, day=MONDAY, until=None, service_id=None, doctor_id=None) -> list[dict[str, Any]]:
    doctor_id = doctor_id or w["doctor"]["user_id"]
    q = (f"/catalog/doctors/{doctor_id}/slots?clinic_id={w['a']['clinic_id']}"
         f"&service_id={service_id or w['service_id']}&date_from={day}&date_to={until or day}")
    return ok(client.http.get(q))["items"]


def book(client, w, patient_token, start, key=None, service_id=None, doctor_id=None):
    headers = {"Idempotency-Key": key} if key else None
    return jpost(client, "/bookings", {"clinic_id": w["a"]["clinic_id"], "service_id": service_id or w["service_id"],
                                       "doctor_id": doctor_id or w["doctor"]["user_id"], "start": start},
                 token=patient_token, headers=headers)


def patient(client, outbox, phone) -> dict[str, Any]:
    tokens = sign_up(client, outbox, phone)
    me = body(jpost(client, "/me", token=tokens["access_token"], method="get"))
    return {"token": tokens["access_token"], "user_id": me["user_id"], "phone": phone,
            "refresh": tokens["refresh_token"]}


CONSULT = {"name": {"ru": "Консультация кардиолога", "en": "Cardiology consultation"}, "duration_minutes": 30,
           "price": {"amount": 300000, "currency": "RUB"}, "modality": "in_person", "resource_kinds": [],
           "specialty": "cardiologist"}


def two_clinics(client, outbox, fixed_clock) -> dict[str, Any]:
    """world() with clinic B (Moscow) active too, a cardiology consultation in both clinics, and a second
    doctor who works in B only. On Monday 30 November both doctors work 07:00-11:00 UTC (A: 09:00-13:00
    Kaliningrad; B: 10:00-14:00 Moscow), so one patient can try to be with both at once (built once,
    restored after: tests/worlds.py)."""
    from tests.worlds import remembered

    return remembered("two_clinics", lambda: _two_clinics(client, outbox, fixed_clock), fixed_clock)


def _two_clinics(client, outbox, fixed_clock) -> dict[str, Any]:
    from tests.conftest import make_staff
    from tests.unit.clinic_setup import DOCTOR_PROFILE, activate, invite_doctor, world

    w = world(client, outbox, fixed_clock)
    a, b = w["a"]["clinic_id"], w["b"]["clinic_id"]
    second = make_staff(client, outbox, fixed_clock, "+79110000006", "doctor")
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_b"], b, second)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=second["token"], method="put"))
    w["consult_a"] = ok(jpost(client, f"/clinics/{a}/services", CONSULT, token=w["admin_a"]["token"]), 201)["service_id"]
    w["consult_b"] = ok(jpost(client, f"/clinics/{b}/services", CONSULT, token=w["admin_b"]["token"]), 201)["service_id"]
    ok(jpost(client, f"/clinics/{b}/doctors/{second['user_id']}/templates",
             {"branch_id": w["b"]["branch_id"], "modality": "in_person", "weekday": "mon", "start": "10:00",
              "end": "14:00"}, token=w["admin_b"]["token"]), 201)
    activate(client, w["admin_b"], w["platform"], b)
    w["second"] = second
    return w


def booking_in(w, clinic: str, start: str, doctor: dict[str, Any] | None = None):
    """A BookingIn for the consultation in clinic "a" (the first doctor) or "b" (the second doctor)."""
    from chalicelib.booking import models as bm

    doctor = doctor or (w["doctor"] if clinic == "a" else w["second"])
    return bm.BookingIn(clinic_id=w[clinic]["clinic_id"], service_id=w[f"consult_{clinic}"],
                        doctor_id=doctor["user_id"], start=start)
