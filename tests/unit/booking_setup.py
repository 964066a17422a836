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
