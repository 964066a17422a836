"""Demo data for ``make run``: one clinic, one doctor, one patient. Written once."""
from __future__ import annotations

from typing import Any

from chalicelib.core import clock, db
from chalicelib.core.ids import new_id
from chalicelib.identity import store
from chalicelib.identity.service import hash_password

DEMO_PATIENT = {"phone": "+79000000001", "password": "demo-patient-2026", "first_name": "Анна",
                "last_name": "Демонстрационная", "role": "patient"}
DEMO_DOCTOR = {"phone": "+79000000002", "password": "demo-doctor-2026", "first_name": "Иван",
               "last_name": "Врачев", "role": "doctor"}
DEMO_ADMIN = {"phone": "+79000000003", "password": "demo-admin-2026", "first_name": "Мария",
              "last_name": "Администраторова", "role": "clinic_admin"}
MARKER = ("SEED#demo", "SEED")


def _user(spec: dict[str, Any], now: int) -> dict[str, Any]:
    return {
        "user_id": new_id(), "role": spec["role"], "status": "active", "phone": spec["phone"],
        "first_name": spec["first_name"], "last_name": spec["last_name"], "birth_date": "1985-03-01",
        "language": "ru", "password_hash": hash_password(spec["password"]), "consent_version": "2026-11",
        "consent_at": now, "mfa_method": "sms", "recovery_hashes": [], "totp_last_step": 0,
        "created_at": now, "updated_at": now, "version": 1,
    }


def seed_once() -> bool:
    """Create the demo data unless it exists. Returns True when it was written now."""
    if db.get(*MARKER):
        return False
    now = clock.epoch()
    clinic_id = new_id()
    users = [_user(s, now) for s in (DEMO_PATIENT, DEMO_DOCTOR, DEMO_ADMIN)]
    doctor, admin = users[1], users[2]
    for user in users:
        if store.user_id_for_phone(user["phone"]) is None:
            db.transact(store.put_user_with_phone_ops(user))
    # The clinic domain arrives with its own issue; these items give it a demo tenant to start from.
    items = [
        {"PK": db.key("CLINIC", clinic_id), "SK": "PROFILE", "type": "clinic", "clinic_id": clinic_id,
         "legal_name": "ООО «Демо-клиника»", "name": "Демо-клиника", "status": "active", "country": "RU",
         "currency": "RUB", "city": "Калининград", "time_zone": "Europe/Kaliningrad", "created_at": now},
        {"PK": db.key("CLINIC", clinic_id), "SK": db.key("DOCTOR", doctor["user_id"]), "type": "clinic_doctor",
         "clinic_id": clinic_id, "doctor_id": doctor["user_id"], "specialties": ["therapist"], "created_at": now},
        {"PK": db.key("CLINIC", clinic_id), "SK": db.key("ADMIN", admin["user_id"]), "type": "clinic_admin",
         "clinic_id": clinic_id, "user_id": admin["user_id"], "created_at": now},
        {"PK": MARKER[0], "SK": MARKER[1], "type": "seed", "clinic_id": clinic_id, "created_at": now},
    ]
    db.transact({"Put": {"TableName": db.table_name(), "Item": db.to_item(i)}} for i in items)
    return True
