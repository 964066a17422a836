"""Settings that fail closed, Stripe keys read field by field, and one key per purpose.

Rotating one purpose's key (``KEY_VERSIONS``) must not log anybody out or break the
others; where a value outlives a rotation (calendar feed URLs, list cursors) the previous
key is still accepted for one version.
"""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.conftest import body, jpost, make_staff, reset_process_state

MASTER = "m" * 16 + "0123456789abcdef0123456789abcdef"


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _public(pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def aws_env(**over: str) -> dict[str, str]:
    """What the CDK stack gives a deployed function (tests/infra holds the stack to it)."""
    env = {
        "STAGE": "prod", "TABLE_NAME": "clinic-backend-prod",
        "MASTER_KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:master",
        "TOKEN_SIGNING_KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:signing",
        "TOKEN_VERIFICATION_KEYS_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:verify",
        "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:stripe",
        "FIREBASE_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:firebase",
        "NOTIFICATIONS_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/123456789012/clinic-backend-prod-notifications",
        "PUSH_GATEWAY": "fcm",
        "PUBLIC_BASE_URL": "https://abc123.execute-api.eu-central-1.amazonaws.com/api",
        "PORTAL_BASE_URL": "https://d111111abcdef8.cloudfront.net",
        "SMS_GATEWAY": "sns", "EMAIL_GATEWAY": "ses", "VIDEO_GATEWAY": "chime",
    }
    env.update(over)
    return {k: v for k, v in env.items() if v != ""}


def settings_from(monkeypatch, env: dict[str, str]):
    from chalicelib.core import settings

    for name in ("STAGE", "TABLE_NAME", "SMS_GATEWAY", "DYNAMODB_ENDPOINT", "LOCAL_STATE_DIR", "STRIPE_API_BASE",
                 "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "MASTER_KEY", "TOKEN_SIGNING_KEY_PEM", "PUSH_GATEWAY",
                 "FIREBASE_SECRET_ARN", "NOTIFICATIONS_QUEUE_URL", "FCM_ENDPOINT", "FCM_STATIC_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings.reset_settings()
    return settings.get_settings()


# ---- fail closed -------------------------------------------------------------------------------
def test_a_function_without_stage_does_not_start_as_local(monkeypatch):
    from chalicelib.core.settings import SettingsError

    env = aws_env()
    del env["STAGE"]
    with pytest.raises(SettingsError, match="STAGE"):
        settings_from(monkeypatch, env)


def test_the_stack_environment_starts(monkeypatch):
    s = settings_from(monkeypatch, aws_env())
    assert s.stage == "prod" and s.stripe_secret_arn and s.master_key_secret_arn


@pytest.mark.parametrize("over, said", [
    ({"MASTER_KEY_SECRET_ARN": ""}, "MASTER_KEY_SECRET_ARN is not set"),
    ({"TOKEN_SIGNING_KEY_SECRET_ARN": ""}, "TOKEN_SIGNING_KEY_SECRET_ARN is not set"),
    ({"STRIPE_SECRET_ARN": ""}, "STRIPE_SECRET_ARN is not set"),
    ({"PORTAL_BASE_URL": ""}, "PORTAL_BASE_URL is not set"),
    ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL must be an https:// origin"),  # the local default
    ({"SMS_GATEWAY": "console"}, "console gateways"),
    ({"EMAIL_GATEWAY": "console"}, "console gateways"),
    ({"VIDEO_GATEWAY": "local"}, "Chime"),
    ({"PUSH_GATEWAY": "local"}, "PUSH_GATEWAY=local prints pushes"),
    ({"PUSH_GATEWAY": ""}, "PUSH_GATEWAY=local prints pushes"),  # unset: the local default is refused too
    ({"FIREBASE_SECRET_ARN": ""}, "FIREBASE_SECRET_ARN is not set"),
    ({"NOTIFICATIONS_QUEUE_URL": ""}, "NOTIFICATIONS_QUEUE_URL is not set"),
    ({"MASTER_KEY": MASTER}, "MASTER_KEY holds a clear secret"),
    ({"STRIPE_SECRET_KEY": "sk_test_local"}, "STRIPE_SECRET_KEY holds a clear secret"),
    ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "STRIPE_API_BASE points at a local"),
    ({"DYNAMODB_ENDPOINT": "http://127.0.0.1:8001"}, "DYNAMODB_ENDPOINT points at a local"),
    ({"LOCAL_STATE_DIR": "/tmp/keys"}, "LOCAL_STATE_DIR points at a local"),
    ({"KEY_VERSIONS": '{"calendar": 2}'}, "unknown purposes"),
])
def test_a_deployed_stage_refuses_anything_local_or_missing(monkeypatch, over, said):
    from chalicelib.core.settings import SettingsError

    for stage in ("dev", "prod"):
        if stage == "dev" and over == {"VIDEO_GATEWAY": "local"}:
            continue  # dev may try video visits without Chime
        with pytest.raises(SettingsError, match=said.replace("(", r"\(")) as err:
            settings_from(monkeypatch, aws_env(STAGE=stage, **over))
        assert f"stage {stage} cannot start" in str(err.value) or "unknown purposes" in str(err.value)


def test_a_deployed_stage_never_generates_a_key(backend_env, monkeypatch):
    """Even if a function got past the settings, asking for a secret without an ARN is refused."""
    from chalicelib.core import secrets
    from chalicelib.core.settings import SettingsError

    settings_from(monkeypatch, aws_env())
    monkeypatch.setattr(secrets, "_from_secrets_manager", lambda arn: "")
    monkeypatch.setattr(secrets.get_settings(), "master_key_secret_arn", None)
    with pytest.raises(SettingsError, match="never generates"):
        secrets.master_key()


# ---- secrets that resolve in AWS -------------------------------------------------------------------
def _put_secrets(stripe_doc: str) -> dict[str, str]:
    from chalicelib.core import aws

    sm = aws.client("secretsmanager")
    pem = _pem()
    return {
        "MASTER_KEY_SECRET_ARN": sm.create_secret(Name="master", SecretString=MASTER)["ARN"],
        "TOKEN_SIGNING_KEY_SECRET_ARN": sm.create_secret(Name="signing", SecretString=pem)["ARN"],
        "TOKEN_VERIFICATION_KEYS_SECRET_ARN": sm.create_secret(Name="verify", SecretString=json.dumps(
            {"local-1": _public(pem)}))["ARN"],
        "STRIPE_SECRET_ARN": sm.create_secret(Name="stripe", SecretString=stripe_doc)["ARN"],
    }


STRIPE_DOC = json.dumps({"secret_key": "sk_test_from_secrets_manager", "publishable_key": "pk_test_123",
                         "webhook_secret": "whsec_from_secrets_manager"})


def test_a_deployed_webhook_verifies_with_the_webhook_secret_field(backend_env, monkeypatch):
    """The old code had no ARN for the webhook secret: every webhook in dev or prod was a 500."""
    from chalice.test import Client

    from local.stripe_fake import sign

    arns = _put_secrets(STRIPE_DOC)
    env = aws_env(STAGE="dev", TABLE_NAME=backend_env["TABLE_NAME"], **arns)
    settings_from(monkeypatch, env)
    reset_process_state()
    from app import app

    payload = json.dumps({"id": "evt_1", "type": "account.updated", "created": 1,
                          "data": {"object": {"id": "acct_unknown"}}}).encode()
    with Client(app, stage_name="test") as c:
        good = c.http.post("/webhooks/stripe", body=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, "whsec_from_secrets_manager")})
        assert good.status_code == 200 and body(good) == {"handled": False}
        # the whole JSON document is not the secret
        forged = c.http.post("/webhooks/stripe", body=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, STRIPE_DOC)})
        assert forged.status_code == 400 and body(forged)["code"] == "invalid_signature"


def test_the_api_key_sent_to_stripe_is_the_secret_key_field(client, outbox, fixed_clock, fake_stripe, monkeypatch):
    from tests.unit.clinic_setup import new_clinic_de

    arns = _put_secrets(STRIPE_DOC)
    monkeypatch.setenv("STRIPE_SECRET_ARN", arns["STRIPE_SECRET_ARN"])
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    reset_process_state()
    admin = make_staff(client, outbox, fixed_clock, "+79110000311", "clinic_admin")
    cid = new_clinic_de(client, admin)["clinic_id"]
    r = jpost(client, f"/clinics/{cid}/payouts/onboarding", {}, token=admin["token"])
    assert r.status_code == 201, r.body
    assert fake_stripe.api_keys[-1] == "sk_test_from_secrets_manager"


@pytest.mark.parametrize("doc, said", [
    ("Xq3Zr8pLk2mNv7Tb", "must be a JSON object"),  # the random placeholder of a fresh stack
    (json.dumps({"secret_key": "", "publishable_key": "", "webhook_secret": ""}), "secret_key"),
    (json.dumps({"secret_key": "sk_live_1", "publishable_key": "pk_live_1"}), "webhook_secret"),
    (json.dumps({"secret_key": "pk_live_1", "publishable_key": "pk_live_1", "webhook_secret": "whsec_1"}),
     "secret_key"),
])
def test_a_stripe_secret_not_filled_in_is_a_clear_error(backend_env, monkeypatch, doc, said):
    from chalicelib.core import secrets
    from chalicelib.core.settings import SettingsError

    arns = _put_secrets(doc)
    settings_from(monkeypatch, aws_env(**arns))
    secrets.clear_cache()
    with pytest.raises(SettingsError, match=said) as err:
        secrets.stripe_keys()
    assert "sk_live" not in str(err.value) and "whsec_1" not in str(err.value)  # never the value itself


# ---- one key per purpose ------------------------------------------------------------------------
def _hkdf(master: bytes, info: bytes) -> bytes:
    """RFC 5869 by hand, to hold the derivation to what docs/security.md says."""
    prk = hmac.new(b"clinic-backend/hkdf/v1", master, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_each_purpose_has_its_own_hkdf_key(backend_env, monkeypatch):
    from chalicelib.core import crypto
    from chalicelib.core.settings import KEY_PURPOSES

    monkeypatch.setenv("MASTER_KEY", MASTER)
    reset_process_state()
    keys = {p: crypto.purpose_key(p) for p in KEY_PURPOSES}
    assert len(set(keys.values())) == len(KEY_PURPOSES)
    for purpose, key in keys.items():
        assert key == _hkdf(MASTER.encode(), f"{purpose}/v1".encode())
    assert crypto.keyed_hash("refresh", "s", "x") == hmac.new(
        keys["refresh_tokens"], b"refresh\x1fs\x1fx", hashlib.sha256).hexdigest()
    with pytest.raises(ValueError, match="no key purpose"):
        crypto.keyed_hash("something-new", "x")


def _doctor_pair(client, outbox, fixed_clock, phone: str) -> dict:
    """A doctor signed in with password and authenticator app: access and refresh token."""
    import pyotp

    from tests.conftest import PASSWORD

    staff = make_staff(client, outbox, fixed_clock, phone, "doctor")
    fixed_clock.advance(seconds=31)
    r = jpost(client, "/auth/login", {"phone": phone, "password": PASSWORD})
    r = jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"],
                                             "code": pyotp.TOTP(staff["totp"]).at(fixed_clock.now())})
    assert r.status_code == 200, r.body
    return body(r)


def _rotate(monkeypatch, **versions: int) -> None:
    monkeypatch.setenv("KEY_VERSIONS", json.dumps(versions))
    reset_process_state()


def test_rotating_the_calendar_key_keeps_sessions_and_old_feed_urls(client, outbox, fixed_clock, monkeypatch):
    monkeypatch.setenv("MASTER_KEY", MASTER)
    monkeypatch.setenv("TOKEN_SIGNING_KEY_PEM", _pem())
    reset_process_state()
    pair = _doctor_pair(client, outbox, fixed_clock, "+79110000321")
    r = jpost(client, "/me/calendar-feed", token=pair["access_token"], method="get")
    assert r.status_code == 200, r.body
    url_v1 = body(r)["url"]
    path_v1 = "/" + url_v1.split("/", 3)[3]
    assert client.http.get(path_v1).status_code == 200

    _rotate(monkeypatch, calendar_feeds=2)
    # the doctor is still signed in, and the refresh token still works
    assert jpost(client, "/me", token=pair["access_token"], method="get").status_code == 200
    refreshed = jpost(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.body
    token = body(refreshed)["access_token"]
    url_v2 = body(jpost(client, "/me/calendar-feed", token=token, method="get"))["url"]
    assert url_v2 != url_v1
    assert client.http.get(path_v1).status_code == 200  # subscribed calendars keep working
    assert client.http.get("/" + url_v2.split("/", 3)[3]).status_code == 200

    _rotate(monkeypatch, calendar_feeds=3)
    assert client.http.get(path_v1).status_code == 404  # two rotations later the old URL is dead
    assert client.http.get("/" + url_v2.split("/", 3)[3]).status_code == 200


def test_rotating_the_refresh_key_does_not_touch_calendar_urls(client, outbox, fixed_clock, monkeypatch):
    monkeypatch.setenv("MASTER_KEY", MASTER)
    monkeypatch.setenv("TOKEN_SIGNING_KEY_PEM", _pem())
    reset_process_state()
    pair = _doctor_pair(client, outbox, fixed_clock, "+79110000322")
    url = body(jpost(client, "/me/calendar-feed", token=pair["access_token"], method="get"))["url"]
    _rotate(monkeypatch, refresh_tokens=2, rate_limits=2, login_codes=2)
    assert client.http.get("/" + url.split("/", 3)[3]).status_code == 200
    assert body(jpost(client, "/me/calendar-feed", token=pair["access_token"], method="get"))["url"] == url
    # the refresh key is what was rotated: its sessions end, as the runbook says
    assert jpost(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 401


def test_a_cursor_survives_one_rotation_of_the_cursor_key(backend_env, monkeypatch):
    from chalicelib.core import db

    monkeypatch.setenv("MASTER_KEY", MASTER)
    reset_process_state()
    last = {"PK": "CLINIC#1", "SK": "DOCTOR#2"}
    cursor = db.encode_cursor(last, "list-a")
    _rotate(monkeypatch, cursors=2)
    assert db.decode_cursor(cursor, "list-a") == last
    fresh = db.encode_cursor(last, "list-a")
    assert fresh != cursor
    _rotate(monkeypatch, cursors=3)
    from chalicelib.core.errors import AppError

    with pytest.raises(AppError) as err:
        db.decode_cursor(cursor, "list-a")
    assert err.value.code == "invalid_cursor"
    assert db.decode_cursor(fresh, "list-a") == last


def test_a_deployed_authorizer_verifies_tokens_without_the_private_key(backend_env, monkeypatch):
    """The authorizer (a Lambda of its own) reads only the public keys: a token signed by the API verifies
    there, the signing key is never fetched, and a verification secret without the current key id fails
    closed with a message naming it."""
    from chalicelib.core import secrets, tokens
    from chalicelib.core.settings import SettingsError

    arns = _put_secrets(STRIPE_DOC)
    settings_from(monkeypatch, aws_env(STAGE="dev", TABLE_NAME=backend_env["TABLE_NAME"], **arns))
    reset_process_state()
    token = tokens.sign({"sub": "u1", "sid": "s1", "role": "patient", "iat": 1000, "exp": 2000})
    # a fresh authorizer container: it may not read the signing key's secret
    reset_process_state()
    real = secrets._from_secrets_manager
    read: list[str] = []

    def only_public(arn):
        read.append(arn)
        assert arn != arns["TOKEN_SIGNING_KEY_SECRET_ARN"], "the authorizer read the private signing key"
        return real(arn)

    monkeypatch.setattr(secrets, "_from_secrets_manager", only_public)
    assert tokens.verify(token, 1500)["sub"] == "u1"
    assert read == [arns["TOKEN_VERIFICATION_KEYS_SECRET_ARN"]]
    # the verification secret lacks TOKEN_SIGNING_KID (a rotation half done): a clear start-up error
    monkeypatch.setenv("TOKEN_SIGNING_KID", "2026-12")
    reset_process_state()
    with pytest.raises(SettingsError, match="TOKEN_SIGNING_KID"):
        tokens.verify(token, 1500)


def test_a_deployed_stage_refuses_a_console_push_gateway(monkeypatch):
    """No console or print-only push in AWS: PUSH_GATEWAY=console is no gateway at all, and the stack's own
    environment names FCM."""
    from chalicelib.core.settings import SettingsError

    with pytest.raises(SettingsError, match="PUSH_GATEWAY missing or invalid"):
        settings_from(monkeypatch, aws_env(PUSH_GATEWAY="console"))
    assert settings_from(monkeypatch, aws_env(STAGE="dev")).push_gateway == "fcm"


def test_production_refuses_the_local_fcm_fake(monkeypatch):
    """A static bearer token and a local FCM endpoint point firebase-admin at the tests' fake server; in a deployed
    stage they would send every push nowhere (or to whoever listens there)."""
    from chalicelib.core.settings import SettingsError

    for over, said in (({"FCM_STATIC_TOKEN": "x"}, "FCM_STATIC_TOKEN"),
                       ({"FCM_ENDPOINT": "http://127.0.0.1:9"}, "FCM_ENDPOINT points at a local")):
        with pytest.raises(SettingsError, match=said):
            settings_from(monkeypatch, aws_env(STAGE="prod", **over))
