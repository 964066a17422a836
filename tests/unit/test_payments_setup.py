"""The payments world: a Berlin clinic (Stripe serves Germany) with payouts connected at the local Stripe server,
a doctor, a consultation with a 30 % prepayment, a patient, and helpers to pay and to deliver Stripe's events.
(Named test_payments_* so it travels with the payments tests; it holds no tests itself.)"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.core import db
from tests.conftest import body, jpost, make_platform_admin, make_staff, sign_up
from tests.unit.clinic_setup import DOCTOR_PROFILE, activate, invite_doctor, new_clinic_de, ok

MONDAY = "2026-11-30"
CONSULT_EUR = {"name": {"ru": "Консультация кардиолога", "en": "Cardiology consultation"}, "duration_minutes": 30,
               "price": {"amount": 12000, "currency": "EUR"}, "modality": "in_person", "resource_kinds": [],
               "specialty": "cardiologist", "prepayment": {"kind": "percent", "percent": 30}}


def connect_payouts(fake, cid: str) -> str:
    """The clinic finished Stripe onboarding: a connected account at the fake, charges enabled."""
    from chalicelib.clinics import store

    acct = fake.create_account({"country": "DE", "type": "express"}, None)
    acct.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
    clinic = store.get_clinic(cid)
    db.update_versioned(store.clinic_pk(cid), "PROFILE", {"payouts": {
        "account_id": acct["id"], "charges_enabled": True, "payouts_enabled": True, "status": "active"}},
        clinic["version"])
    return acct["id"]


def berlin(client, outbox, fixed_clock, fake, phones=("+79120000001", "+79120000002", "+79120000003",
                                                      "+79120000004", "+79120000005")) -> dict[str, Any]:
    admin = make_staff(client, outbox, fixed_clock, phones[0], "clinic_admin")
    doctor = make_staff(client, outbox, fixed_clock, phones[1], "doctor")
    platform = make_platform_admin(client, outbox, fixed_clock, phones[2])
    c = new_clinic_de(client, admin)
    cid = c["clinic_id"]
    acct = connect_payouts(fake, cid)
    invite_doctor(client, outbox, admin, cid, doctor)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=doctor["token"], method="put"))
    sid = ok(jpost(client, f"/clinics/{cid}/services", CONSULT_EUR, token=admin["token"]), 201)["service_id"]
    ok(jpost(client, f"/clinics/{cid}/doctors/{doctor['user_id']}/templates",
             {"branch_id": c["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00",
              "end": "13:00"}, token=admin["token"]), 201)
    activate(client, admin, platform, cid)
    patients = []
    for phone in phones[3:]:
        tokens = sign_up(client, outbox, phone)
        me = body(jpost(client, "/me", token=tokens["access_token"], method="get"))
        patients.append({"token": tokens["access_token"], "user_id": me["user_id"], "phone": phone})
    return {"admin": admin, "doctor": doctor, "platform": platform, "clinic_id": cid, "branch_id": c["branch_id"],
            "service_id": sid, "account_id": acct, "patient": patients[0], "patients": patients}


def free_starts(client, w, day=MONDAY) -> list[str]:
    q = (f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w['clinic_id']}&service_id={w['service_id']}"
         f"&date_from={day}&date_to={day}")
    return [s["start"] for s in ok(client.http.get(q))["items"]]


def hold(client, w, patient=None, start=None) -> dict[str, Any]:
    patient = patient or w["patient"]
    start = start or free_starts(client, w)[0]
    b = ok(jpost(client, "/bookings", {"clinic_id": w["clinic_id"], "service_id": w["service_id"],
                                       "doctor_id": w["doctor"]["user_id"], "start": start},
                 token=patient["token"]), 201)
    assert b["status"] == "held" and b["prepayment"]["amount"] == 3600, b
    return b


def ask_payment(client, patient, bid, spend=None, key=None):
    payload = {} if spend is None else {"cashback_spend": spend}
    return jpost(client, f"/bookings/{bid}/payment", payload, token=patient["token"],
                 headers={"Idempotency-Key": key} if key else None)


def deliver(client, fake, event) -> Any:
    """Post one event to the app's webhook, signed as Stripe signs it."""
    payload, sig = fake.signed(event)
    return client.http.post("/webhooks/stripe", body=payload,
                            headers={"Stripe-Signature": sig, "Content-Type": "application/json"})


def deliver_all(client, fake, since: int = 0) -> list[Any]:
    return [deliver(client, fake, e) for e in fake.payments.events[since:]]


def booking_status(bid: str) -> str:
    from chalicelib.booking import store

    return store.get_booking(bid)["status"]


def events_of(kind: str) -> list[dict[str, Any]]:
    """Every outbox event of a kind written so far (tests inspect the table with a Scan)."""
    from chalicelib.core import aws

    items, start = [], None
    while True:
        kw = {"TableName": db.table_name(), "FilterExpression": "#t = :t AND kind = :k",
              "ExpressionAttributeNames": {"#t": "type"}, "ExpressionAttributeValues": db.values(t="event", k=kind)}
        if start:
            kw["ExclusiveStartKey"] = start
        resp = aws.client("dynamodb").scan(**kw)
        items += [db.from_item(i) for i in resp.get("Items", [])]
        start = resp.get("LastEvaluatedKey")
        if not start:
            return items


def dumps(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)
