"""What a clinic admin sees when Stripe says no, or says nothing.

The real Stripe SDK talks to the local Stripe-compatible server (local/stripe_fake.py),
which answers as Stripe does: errors come back in Stripe's own shape and status, and the
SDK's error classes and retries run as they would against Stripe.
"""
from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import body, jpost, make_staff
from tests.unit.clinic_setup import new_clinic, new_clinic_de, ok

PROVIDER_WORDS = ("Error", "insufficient funds", "Stripe-", "stripe", "trace", "sk_test", "Invalid API Key",
                  "empty string", "acct_")


def _start(client, admin, cid, lang="en"):
    return client.http.post(f"/clinics/{cid}/payouts/onboarding", body="{}", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {admin['token']}", "Accept-Language": lang})


def _leaks(r) -> list[str]:
    text = r.body.decode() if isinstance(r.body, bytes) else str(r.body)
    return [w for w in PROVIDER_WORDS if w in text]


@pytest.fixture
def admin(client, outbox, fixed_clock, fake_stripe):
    return make_staff(client, outbox, fixed_clock, "+79110000301", "clinic_admin")


def test_a_clinic_in_russia_is_told_stripe_does_not_serve_its_country(client, admin, fake_stripe):
    cid = new_clinic(client, admin)["clinic_id"]  # country RU
    r = _start(client, admin, cid, "ru")
    problem = body(r)
    assert r.status_code == 422 and problem["code"] == "payouts_country_unsupported"
    assert r.headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == ["country"]
    assert problem["title"] == "Выплаты через Stripe недоступны в стране регистрации клиники"
    # nothing was half-written: the clinic has no account and can still be asked again
    assert ok(jpost(client, f"/clinics/{cid}/payouts", token=admin["token"], method="get")).get("account_id") is None
    assert _start(client, admin, cid).status_code == 422


@pytest.mark.parametrize("error, status, code", [
    ("card_declined", 402, "card_declined"),
    ("invalid_request", 422, "payment_request_rejected"),
    ("account_not_ready", 409, "payouts_not_ready"),
    ("idempotency", 409, "idempotency_conflict"),
])
def test_a_stripe_4xx_is_the_matching_4xx_problem_with_nothing_of_stripe_in_it(client, admin, fake_stripe,
                                                                               error, status, code, caplog):
    cid = new_clinic_de(client, admin)["clinic_id"]
    fake_stripe.fail_next("/v1/accounts", error)
    with caplog.at_level(logging.INFO):
        r = _start(client, admin, cid)
    problem = body(r)
    assert (r.status_code, problem["code"]) == (status, code), r.body
    assert "Retry-After" not in r.headers  # retrying the same request will not help
    assert _leaks(r) == [], r.body
    assert set(problem) <= {"type", "title", "status", "code", "detail", "errors", "instance"}
    # the provider's message stays out of the logs too; Stripe's error code is kept for operators
    logged = "\n".join(rec.getMessage() + json.dumps(getattr(rec, "__dict__", {}), default=str)
                       for rec in caplog.records)
    assert "insufficient funds" not in logged.lower() and "sk_test_local_key" not in logged
    # and the clinic is unchanged: a second try once Stripe agrees goes through
    assert _start(client, admin, cid).status_code == 201


def test_our_keys_refused_by_stripe_are_a_503_to_the_client_and_an_error_line_for_the_operator(
        client, admin, fake_stripe, caplog):
    cid = new_clinic_de(client, admin)["clinic_id"]
    fake_stripe.fail_next("/v1/accounts", "bad_key")
    with caplog.at_level(logging.INFO):
        r = _start(client, admin, cid)
    assert (r.status_code, body(r)["code"]) == (503, "payment_provider_unavailable"), r.body
    assert int(r.headers["Retry-After"]) > 0 and _leaks(r) == []
    logged = "\n".join(rec.getMessage() + json.dumps(getattr(rec, "__dict__", {}), default=str)
                       for rec in caplog.records)
    assert "stripe.credentials_rejected" in logged and "sk_test_local_key" not in logged
    assert _start(client, admin, cid).status_code == 201  # once the keys are right again


def test_stripe_throttling_is_a_429_with_retry_after(client, admin, fake_stripe):
    cid = new_clinic_de(client, admin)["clinic_id"]
    fake_stripe.fail_next("/v1/accounts", "rate_limited", times=3)  # the SDK's own retries see it too
    r = _start(client, admin, cid)
    assert r.status_code == 429 and body(r)["code"] == "payment_provider_busy" and int(r.headers["Retry-After"]) > 0


def test_a_stripe_5xx_is_a_503_with_retry_after_after_the_sdk_retried(client, admin, fake_stripe):
    cid = new_clinic_de(client, admin)["clinic_id"]
    fake_stripe.fail_next("/v1/accounts", "server_error", times=3)
    before = len([p for _, p, _ in fake_stripe.requests if p == "/v1/accounts"])
    r = _start(client, admin, cid)
    assert r.status_code == 503 and body(r)["code"] == "payment_provider_unavailable"
    assert int(r.headers["Retry-After"]) > 0 and _leaks(r) == []
    assert len([p for _, p, _ in fake_stripe.requests if p == "/v1/accounts"]) - before == 3  # 1 + 2 retries
    # one failure that the SDK's retry absorbs never reaches the admin
    fake_stripe.fail_next("/v1/accounts", "server_error", times=1)
    assert _start(client, admin, cid).status_code == 201


def test_a_stripe_that_hangs_is_a_503_within_the_timeout(client, outbox, fixed_clock, fake_stripe, monkeypatch):
    from tests.conftest import reset_process_state

    monkeypatch.setenv("STRIPE_TIMEOUT_S", "0.3")
    reset_process_state()
    admin = make_staff(client, outbox, fixed_clock, "+79110000302", "clinic_admin")
    cid = new_clinic_de(client, admin)["clinic_id"]
    fake_stripe.fail_next("/v1/accounts", "hang", times=3, hang_s=1.5)
    r = _start(client, admin, cid)
    assert r.status_code == 503 and body(r)["code"] == "payment_provider_unavailable" and r.headers["Retry-After"]


def test_stripe_unreachable_is_a_503(client, outbox, fixed_clock, fake_stripe, monkeypatch):
    import socket

    from tests.conftest import reset_process_state

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{port}")
    reset_process_state()
    admin = make_staff(client, outbox, fixed_clock, "+79110000303", "clinic_admin")
    cid = new_clinic_de(client, admin)["clinic_id"]
    r = _start(client, admin, cid)
    assert r.status_code == 503 and body(r)["code"] == "payment_provider_unavailable" and _leaks(r) == []
