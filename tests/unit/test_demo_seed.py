"""The demo data of ``make run``: two active clinics, one of them in a country Stripe serves."""
from __future__ import annotations

import pyotp

from tests.conftest import body, jpost


def _admin_token(client, fixed_clock, seeded) -> str:
    from local.seed import DEMO_ADMIN

    r = jpost(client, "/auth/login", {"phone": DEMO_ADMIN["phone"], "password": DEMO_ADMIN["password"]})
    assert r.status_code == 202, r.body
    code = pyotp.TOTP(seeded["totp"][DEMO_ADMIN["phone"]]).at(fixed_clock.now())
    r = jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"], "code": code})
    assert r.status_code == 200, r.body
    return body(r)["access_token"]


def test_the_demo_has_a_berlin_clinic_whose_payouts_work_and_a_russian_one_told_why_not(
        client, outbox, fixed_clock, fake_stripe):
    from local.seed import seed_once

    seeded = seed_once()
    assert seeded and seeded["berlin_clinic_id"] and seed_once() is None  # once only
    public = client.http.get(f"/catalog/clinics/{seeded['berlin_clinic_id']}")
    assert public.status_code == 200 and body(public)["currency"] == "EUR"  # listed: patients find it
    token = _admin_token(client, fixed_clock, seeded)
    clinic = body(jpost(client, f"/clinics/{seeded['berlin_clinic_id']}", token=token, method="get"))
    assert (clinic["status"], clinic["country"], clinic["currency"]) == ("active", "DE", "EUR")
    branches = body(jpost(client, f"/clinics/{seeded['berlin_clinic_id']}/branches", token=token, method="get"))
    assert [b["time_zone"] for b in branches["items"]] == ["Europe/Berlin"]
    services = body(jpost(client, f"/clinics/{seeded['berlin_clinic_id']}/services", token=token, method="get"))
    assert {s["price"]["currency"] for s in services["items"]} == {"EUR"}
    r = jpost(client, f"/clinics/{seeded['berlin_clinic_id']}/payouts/onboarding", {}, token=token)
    assert r.status_code == 201 and body(r)["account_id"].startswith("acct_"), r.body
    r = jpost(client, f"/clinics/{seeded['clinic_id']}/payouts/onboarding", {}, token=token)
    assert r.status_code == 422 and body(r)["code"] == "payouts_country_unsupported"
