"""Builders for clinic tests: a whole onboarded clinic through the HTTP API."""
from __future__ import annotations

from typing import Any

from tests.conftest import body, jpost, make_staff

CLINIC = {
    "legal_name": "ООО «Клиника Здоровье»", "display_name": {"ru": "Здоровье", "en": "Zdorovye"},
    "tax_id": "3906123456", "country": "RU", "currency": "RUB",
    "contacts": {"phone": "+74012123456", "email": "info@zdorovye.example", "public": ["phone"]},
}


# A clinic in a country Stripe serves (Stripe does not onboard businesses in Russia).
CLINIC_DE = {
    "legal_name": "Praxis Mitte GmbH", "display_name": {"ru": "Практика Митте", "en": "Praxis Mitte"},
    "tax_id": "DE123456789", "country": "DE", "currency": "EUR",
    "contacts": {"phone": "+493012345678", "email": "info@praxis-mitte.example", "public": ["phone"]},
}


def new_clinic_de(client, admin) -> dict[str, Any]:
    clinic = ok(jpost(client, "/clinics", CLINIC_DE, token=admin["token"]), 201)
    cid = clinic["clinic_id"]
    b = ok(jpost(client, f"/clinics/{cid}/branches", branch("Berlin", "Europe/Berlin", "Mitte"),
                 token=admin["token"]), 201)
    return {"clinic_id": cid, "branch_id": b["branch_id"]}


def branch(city="Калининград", zone="Europe/Kaliningrad", name="Центр"):
    return {"name": {"ru": name, "en": name}, "address": "ул. Ленина, 1", "city": city, "time_zone": zone,
            "opening_hours": {"mon": [{"start": "08:00", "end": "20:00"}]}}


SERVICE = {"name": {"ru": "МРТ головного мозга", "en": "Brain MRI"}, "duration_minutes": 40,
           "price": {"amount": 650000, "currency": "RUB"}, "modality": "in_person",
           "preparation": {"ru": "Снимите металлические предметы.", "en": "Remove metal objects."},
           "resource_kinds": ["mri"], "recall_after_days": 180, "specialty": "radiologist"}

DOCTOR_PROFILE = {"specialties": ["cardiologist", "radiologist"], "category": "highest", "years_of_experience": 12,
                  "languages": ["ru", "en"], "bio": {"ru": "Кардиолог.", "en": "Cardiologist."},
                  "takes_duty": True}


def ok(r, status=200):
    assert r.status_code == status, (r.status_code, r.body)
    return body(r)


def new_clinic(client, admin, city="Калининград", zone="Europe/Kaliningrad") -> dict[str, Any]:
    clinic = ok(jpost(client, "/clinics", CLINIC, token=admin["token"]), 201)
    cid = clinic["clinic_id"]
    b = ok(jpost(client, f"/clinics/{cid}/branches", branch(city, zone), token=admin["token"]), 201)
    return {"clinic_id": cid, "branch_id": b["branch_id"]}


def invite_doctor(client, outbox, admin, cid, doctor) -> None:
    inv = ok(jpost(client, f"/clinics/{cid}/invitations", {"role": "doctor", "phone": doctor["phone"]},
                   token=admin["token"]), 201)
    code = outbox.last_code(doctor["phone"])
    ok(jpost(client, "/invitations/accept", {"invitation_id": inv["invitation_id"], "code": code},
             token=doctor["token"]))


def activate(client, admin, platform, cid) -> None:
    ok(jpost(client, f"/clinics/{cid}/submit", {}, token=admin["token"]))
    ok(jpost(client, f"/clinics/{cid}/verify", {}, token=platform["token"]))
    ok(jpost(client, f"/clinics/{cid}/activate", {}, token=admin["token"]))


def world(client, outbox, fixed_clock) -> dict[str, Any]:
    """Clinic A (active, with a doctor, service, room and schedule) and clinic B (draft), their
    admins, the doctor, a patient and a platform administrator (built once, restored after: tests/worlds.py)."""
    from tests.worlds import remembered

    return remembered("world", lambda: _world(client, outbox, fixed_clock), fixed_clock)


def _world(client, outbox, fixed_clock) -> dict[str, Any]:
    from tests.conftest import make_platform_admin, sign_up

    admin_a = make_staff(client, outbox, fixed_clock, "+79110000001", "clinic_admin")
    admin_b = make_staff(client, outbox, fixed_clock, "+79110000002", "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, "+79110000003", "doctor")
    platform = make_platform_admin(client, outbox, fixed_clock, "+79110000004")
    tokens = sign_up(client, outbox, "+79110000005")
    patient = {"token": tokens["access_token"], "refresh": tokens["refresh_token"], "phone": "+79110000005"}
    a = new_clinic(client, admin_a)
    b = new_clinic(client, admin_b, "Москва", "Europe/Moscow")
    invite_doctor(client, outbox, admin_a, a["clinic_id"], doctor)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=doctor["token"], method="put"))
    svc = ok(jpost(client, f"/clinics/{a['clinic_id']}/services", SERVICE, token=admin_a["token"]), 201)
    room = ok(jpost(client, f"/clinics/{a['clinic_id']}/branches/{a['branch_id']}/resources",
                    {"kind": "mri", "name": "MRI 1.5T", "capacity": 1}, token=admin_a["token"]), 201)
    tpl = ok(jpost(client, f"/clinics/{a['clinic_id']}/doctors/{doctor['user_id']}/templates",
                   {"branch_id": a["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00",
                    "end": "13:00"}, token=admin_a["token"]), 201)
    activate(client, admin_a, platform, a["clinic_id"])
    return {"admin_a": admin_a, "admin_b": admin_b, "doctor": doctor, "platform": platform, "patient": patient,
            "a": a, "b": b, "service_id": svc["service_id"], "resource_id": room["resource_id"],
            "template_id": tpl["item_id"]}
