"""Demo data for ``make run``, written once through the same services the API uses:
an active clinic in Kaliningrad with a branch, an MRI room, two services, a
doctor with a weekly schedule and a duty shift, and a patient; and a second active
clinic in Berlin (Germany, EUR, Europe/Berlin with its daylight-saving change), where
the same doctor sees patients by video on Saturdays. Stripe does not onboard businesses
in Russia, so the Berlin clinic is the one whose payouts and prepayments can be tried
locally end to end against the local Stripe server (``local/stripe_fake.py``).

Staff must sign in with an authenticator app; the demo staff accounts get one
whose secret is printed (local only) with a one-line way to read the code.
"""
from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from chalicelib.core import clock, db
from chalicelib.core.ids import new_id
from chalicelib.core.web import Caller
from chalicelib.identity import store
from chalicelib.identity.service import hash_password

DEMO_PATIENT = {"phone": "+79000000001", "password": "demo-patient-2026", "first_name": "Анна",
                "last_name": "Демонстрационная", "role": "patient"}
DEMO_DOCTOR = {"phone": "+79000000002", "password": "demo-doctor-2026", "first_name": "Иван",
               "last_name": "Врачев", "role": "doctor"}
DEMO_ADMIN = {"phone": "+79000000003", "password": "demo-admin-2026", "first_name": "Мария",
              "last_name": "Администраторова", "role": "clinic_admin"}
DEMO_PLATFORM = {"phone": "+79000000004", "password": "demo-platform-2026", "first_name": "Павел",
                 "last_name": "Платформов", "role": "platform_admin"}
MARKER = ("SEED#demo-v2", "SEED")  # the Kaliningrad clinic and the demo accounts
MARKER_BERLIN = ("SEED#demo-v3", "SEED")  # the Berlin clinic, added to an existing demo too


def _user(spec: dict[str, Any], now: int, totp_secret: str | None) -> dict[str, Any]:
    user = {
        "user_id": new_id(), "role": spec["role"], "status": "active", "phone": spec["phone"],
        "first_name": spec["first_name"], "last_name": spec["last_name"], "birth_date": "1985-03-01",
        "language": "ru", "password_hash": hash_password(spec["password"]), "consent_version": "2026-11",
        "consent_at": now, "mfa_method": "sms", "recovery_hashes": [], "totp_last_step": 0,
        "created_at": now, "updated_at": now, "version": 1,
    }
    if totp_secret:
        user.update(mfa_method="totp", totp_secret=totp_secret)
    return user


def seed_once() -> dict[str, Any] | None:
    """Create the demo data unless it exists. Returns what was made (with TOTP secrets) or None."""
    import pyotp

    from chalicelib.bootstrap import clinics
    from chalicelib.clinics import models as cm

    if db.get(*MARKER_BERLIN):
        return None
    marker = db.get(*MARKER)
    if marker:  # an older demo: add what it lacks
        users = {spec["role"]: store.user_id_for_phone(spec["phone"])
                 for spec in (DEMO_DOCTOR, DEMO_ADMIN, DEMO_PLATFORM)}
        _seed_berlin(users, clock.epoch())
        return None  # the accounts (and their authenticator secrets) are the ones already there
    now = clock.epoch()
    secrets = {DEMO_DOCTOR["phone"]: pyotp.random_base32(), DEMO_ADMIN["phone"]: pyotp.random_base32(),
               DEMO_PLATFORM["phone"]: pyotp.random_base32()}
    users = {}
    for spec in (DEMO_PATIENT, DEMO_DOCTOR, DEMO_ADMIN, DEMO_PLATFORM):
        if store.user_id_for_phone(spec["phone"]) is None:
            user = _user(spec, now, secrets.get(spec["phone"]))
            db.Tx().extend(zip(("phone", "user"), store.put_user_with_phone_ops(user), strict=True)).commit()
            users[spec["role"]] = user["user_id"]
        else:
            users[spec["role"]] = store.user_id_for_phone(spec["phone"])
    admin = Caller(users["clinic_admin"], "clinic_admin", "seed", "totp")
    doctor = Caller(users["doctor"], "doctor", "seed", "totp")
    platform = Caller(users["platform_admin"], "platform_admin", "seed", "totp")
    svc = clinics()
    clinic = svc.create_clinic(admin, cm.ClinicCreate(
        legal_name="ООО «Демо-клиника»", display_name={"ru": "Демо-клиника", "en": "Demo Clinic"},
        tax_id="3900000000", country="RU", currency="RUB",
        contacts={"phone": "+74012000000", "public": ["phone"]}))
    cid = clinic["clinic_id"]
    branch = svc.add_branch(admin, cid, cm.BranchIn(
        name={"ru": "Центральный", "en": "Central"}, address="Калининград, Ленинский пр., 1", city="Калининград",
        time_zone="Europe/Kaliningrad",
        opening_hours={d: [{"start": "08:00", "end": "20:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}))
    bid = branch["branch_id"]
    svc.add_resource(admin, cid, bid, cm.ResourceIn(kind="mri", name="МРТ 1.5 Тл"))
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "Консультация кардиолога", "en": "Cardiologist consultation"}, duration_minutes=30,
        price={"amount": 250000, "currency": "RUB"}, modality="in_person", recall_after_days=180,
        specialty="cardiologist"))
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "Видеоконсультация кардиолога", "en": "Cardiologist video visit"}, duration_minutes=20,
        price={"amount": 150000, "currency": "RUB"}, modality="video", specialty="cardiologist"))
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "МРТ головного мозга", "en": "Brain MRI"}, duration_minutes=40,
        price={"amount": 650000, "currency": "RUB"}, modality="in_person", resource_kinds=["mri"],
        preparation={"ru": "Снимите металлические предметы, возьмите прошлые снимки.",
                     "en": "Remove metal objects and bring earlier scans."}))
    # the doctor joins through a real invitation accepted with its code
    from chalicelib.clinics import store as clinic_store

    db.put_new(clinic_store.doctor_membership_item(cid, users["doctor"], now))
    svc.put_doctor_profile(doctor, cm.DoctorProfileIn(
        specialties=["cardiologist"], category="highest", years_of_experience=15, languages=["ru", "en"],
        bio={"ru": "Кардиолог, 15 лет практики.", "en": "Cardiologist, 15 years of practice."}, takes_duty=True))
    for day in ("mon", "tue", "wed", "thu", "fri"):
        svc.add_template(admin, cid, users["doctor"], cm.TemplateIn(
            branch_id=bid, modality="in_person", weekday=day, start=time(9), end=time(13)))
        svc.add_template(admin, cid, users["doctor"], cm.TemplateIn(
            branch_id=bid, modality="video", weekday=day, start=time(14), end=time(16)))
    from chalicelib.core.tz import zone

    today = clock.now().astimezone(zone("Europe/Kaliningrad")).date()
    for offset in range(0, 7):  # evening duty for the urgent queue, after the daytime schedule
        day = today + timedelta(days=offset)
        try:
            svc.add_duty_shift(admin, cid, users["doctor"], cm.DutyShiftIn(
                branch_id=bid, specialty="cardiologist", starts_at=f"{day.isoformat()}T17:00",
                ends_at=f"{day.isoformat()}T23:00"))
        except Exception:  # this evening is already over
            pass
    svc.submit(admin, cid)
    svc.verify(platform, cid)
    svc.activate(admin, cid)
    db.put_new({"PK": MARKER[0], "SK": MARKER[1], "type": "seed", "clinic_id": cid, "created_at": now})
    berlin = _seed_berlin(users, now)
    return {"clinic_id": cid, "berlin_clinic_id": berlin, "totp": secrets}


def _seed_berlin(users: dict[str, Any], now: int) -> str:
    """An active clinic in a Stripe country: Berlin, EUR, a DST zone, with payouts connected at the local
    Stripe server and a prepaid service, so the whole money flow can be tried locally."""
    from chalicelib.bootstrap import clinics
    from chalicelib.clinics import models as cm
    from chalicelib.clinics import store as clinic_store

    admin = Caller(users["clinic_admin"], "clinic_admin", "seed", "totp")
    platform = Caller(users["platform_admin"], "platform_admin", "seed", "totp")
    svc = clinics()
    clinic = svc.create_clinic(admin, cm.ClinicCreate(
        legal_name="Praxis Mitte Demo GmbH", display_name={"ru": "Практика Митте", "en": "Praxis Mitte"},
        tax_id="DE999999999", country="DE", currency="EUR",
        contacts={"phone": "+493000000000", "email": "praxis@demo.example", "public": ["phone"]}))
    cid = clinic["clinic_id"]
    branch = svc.add_branch(admin, cid, cm.BranchIn(
        name={"ru": "Митте", "en": "Mitte"}, address="Berlin, Friedrichstraße 1", city="Berlin",
        time_zone="Europe/Berlin", opening_hours={"sat": [{"start": "09:00", "end": "14:00"}]}))
    bid = branch["branch_id"]
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "Видеоконсультация кардиолога", "en": "Cardiologist video visit"}, duration_minutes=20,
        price={"amount": 9000, "currency": "EUR"}, modality="video", specialty="cardiologist"))
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "Консультация кардиолога", "en": "Cardiologist consultation"}, duration_minutes=30,
        price={"amount": 12000, "currency": "EUR"}, modality="in_person", specialty="cardiologist"))
    db.put_new(clinic_store.doctor_membership_item(cid, users["doctor"], now))
    svc.add_template(admin, cid, users["doctor"], cm.TemplateIn(
        branch_id=bid, modality="video", weekday="sat", start=time(10), end=time(13)))
    # payouts connected at the local Stripe server, and a visit with a 30 % prepayment on Saturday mornings:
    # booking it holds the time until it is paid (PaymentSheet, a payment link, or at the desk)
    account = svc.start_payouts(admin, cid)["account_id"]
    clinic_store.apply_payouts(cid, {"account_id": account, "charges_enabled": True, "payouts_enabled": True,
                                     "status": "active", "event_created": now}, now)
    svc.add_service(admin, cid, cm.ServiceIn(
        name={"ru": "Консультация кардиолога с предоплатой", "en": "Cardiologist consultation, prepaid"},
        duration_minutes=30, price={"amount": 12000, "currency": "EUR"}, modality="in_person",
        specialty="cardiologist", prepayment=cm.Prepayment(kind="percent", percent=30)))
    svc.add_template(admin, cid, users["doctor"], cm.TemplateIn(
        branch_id=bid, modality="in_person", weekday="sat", start=time(9), end=time(10)))
    svc.submit(admin, cid)
    svc.verify(platform, cid)
    svc.activate(admin, cid)
    db.put_new({"PK": MARKER_BERLIN[0], "SK": MARKER_BERLIN[1], "type": "seed", "clinic_id": cid, "created_at": now})
    return cid
