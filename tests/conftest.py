"""Fixtures shared by unit (moto) and integration (DynamoDB Local) tests.

Each test gets its own table, a fixed clock it can move, the Chalice test
client, the SMS outbox read back from moto's SNS backend, and a counter of
the DynamoDB calls each request makes.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest

from chalicelib.core import aws, clock
from chalicelib.core.ids import new_id

ACCOUNT = "123456789012"
REGION = "eu-central-1"
START = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)


_KEYS_DIR: list[str] = []


def keys_dir() -> str:
    """One directory of generated keys per test process (tests/worlds.py restores worlds signed with them)."""
    if not _KEYS_DIR:
        import atexit
        import shutil
        import tempfile

        _KEYS_DIR.append(tempfile.mkdtemp(prefix="clinic-test-keys-"))
        atexit.register(shutil.rmtree, _KEYS_DIR[0], True)
    return _KEYS_DIR[0]


def base_env(table: str, dynamodb_endpoint: str | None) -> dict[str, str]:
    env = {
        "STAGE": "test",
        "TABLE_NAME": table,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "SMS_GATEWAY": "sns",
        "LOG_LEVEL": "INFO",
        "LOCAL_STATE_DIR": keys_dir(),
    }
    if dynamodb_endpoint:
        env["DYNAMODB_ENDPOINT"] = dynamodb_endpoint
    return env


def reset_process_state() -> None:
    from chalicelib import bootstrap

    bootstrap.reset()


@pytest.fixture(scope="session")
def dynamodb_local_server():
    """Amazon's DynamoDB Local on a free 127.0.0.1 port, once per test process, stopped by pid."""
    from local import dynamodb_local

    why = dynamodb_local.available()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"DynamoDB Local is required in CI: {why}")
        pytest.skip(f"DynamoDB Local unavailable outside CI: {why}")
    server = dynamodb_local.start()
    yield server
    server.stop()


@pytest.fixture
def fixed_clock() -> Iterator[clock.FixedClock]:
    fc = clock.FixedClock(START)
    clock.set_clock(fc)
    yield fc
    clock.set_clock(clock.SystemClock())


def _moto(passthrough_urls: list[str]):
    from moto import mock_aws

    from tests.moto_dynamodb import install

    install()  # transactions back up what they touch, one at a time (tests/moto_dynamodb.py)

    config: dict[str, Any] = {"core": {"mock_credentials": True, "reset_boto3_session": True}}
    if passthrough_urls:
        config["core"]["passthrough"] = {"urls": passthrough_urls}
    return mock_aws(config=config)


@pytest.fixture
def backend_env(request, monkeypatch, ddb_endpoint) -> Iterator[dict[str, str]]:
    """Environment for one test: a fresh table on the test's DynamoDB, moto for the rest of AWS."""
    table = f"test-{new_id().lower()}"
    env = base_env(table, ddb_endpoint)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_process_state()
    passthrough = [re.escape(ddb_endpoint) + ".*"] if ddb_endpoint else []
    with _moto(passthrough):
        from chalicelib.core.table import ensure_table

        ensure_table(aws.client("dynamodb"), table)
        aws.client("sesv2").create_email_identity(EmailIdentity="clinic.example")  # the sender, as in AWS
        yield env
        if ddb_endpoint:
            aws.client("dynamodb").delete_table(TableName=table)
    reset_process_state()


@pytest.fixture
def drain(backend_env):
    """Run the event consumers as AWS would after a request: ``drain()`` dispatches every due event."""
    from chalicelib import bootstrap

    return lambda: bootstrap.outbox().drain()


@pytest.fixture
def client(backend_env, fixed_clock):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as c:
        yield c


class Outbox:
    """SMS that SNS accepted, read back from moto's backend."""

    def __init__(self) -> None:
        from moto.sns.models import sns_backends

        self._backend = sns_backends[ACCOUNT][REGION]

    def all(self) -> list[tuple[str, str]]:
        return list(self._backend.sms_messages.values())  # (phone, text) in send order

    def to(self, phone: str) -> list[str]:
        return [text for p, text in self.all() if p == phone]

    def last_code(self, phone: str) -> str:
        texts = self.to(phone)
        assert texts, f"no SMS was sent to {phone}"
        found = re.findall(r"\b(\d{6})\b", texts[-1])
        assert found, f"the last SMS has no code: {texts[-1]!r}"
        return found[0]


@pytest.fixture
def outbox(backend_env) -> Outbox:
    return Outbox()


class CallCounter:
    """Counts DynamoDB API calls through a botocore before-call hook."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model=None, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()

    @property
    def count(self) -> int:
        return len(self.calls)


@pytest.fixture
def ddb_calls(backend_env) -> Iterator[CallCounter]:
    counter = CallCounter()
    aws.add_hook("before-call.dynamodb", counter)
    yield counter
    aws.remove_hook("before-call.dynamodb", counter)


# ------------------------------------------------------------------ journey helpers

def jpost(client, path: str, body: Any = None, token: str | None = None, headers: dict | None = None,
          method: str = "post"):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    fn = getattr(client.http, method)
    if method in ("get", "delete") and body is None:
        return fn(path, headers=h)
    return fn(path, headers=h, body=json.dumps(body if body is not None else {}))


def body(resp) -> Any:
    return json.loads(resp.body) if resp.body else None


PASSWORD = "correct horse battery"


def signup_payload(phone: str, **over: Any) -> dict[str, Any]:
    data = {
        "phone": phone, "password": PASSWORD, "first_name": "Анна", "last_name": "Петрова",
        "birth_date": "1990-04-12", "consent": {"version": "2026-11", "accepted": True}, "language": "en",
    }
    data.update(over)
    return data


def sign_up(client, outbox: Outbox, phone: str, device: str | None = None) -> dict[str, Any]:
    r = jpost(client, "/auth/signup", signup_payload(phone))
    assert r.status_code == 202, r.body
    ch = body(r)["challenge_id"]
    payload: dict[str, Any] = {"challenge_id": ch, "code": outbox.last_code(phone)}
    if device:
        payload["device"] = {"id": device, "name": device}
    r = jpost(client, "/auth/signup/verify", payload)
    assert r.status_code == 201, r.body
    return body(r)


def log_in(client, outbox: Outbox, phone: str, password: str = PASSWORD, device: str | None = None,
           advance: Callable[[], None] | None = None) -> dict[str, Any]:
    r = jpost(client, "/auth/login", {"phone": phone, "password": password})
    assert r.status_code == 202, r.body
    ch = body(r)["challenge_id"]
    payload: dict[str, Any] = {"challenge_id": ch, "code": outbox.last_code(phone)}
    if device:
        payload["device"] = {"id": device, "name": device}
    r = jpost(client, "/auth/login/verify", payload)
    assert r.status_code == 200, r.body
    return body(r)


class LogCapture:
    """Every log line the app writes, formatted as it would ship (Powertools JSON)."""

    def __init__(self) -> None:
        import io
        import logging

        from chalicelib.core import log

        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(log.logger().registered_formatter)
        self.handler.setLevel(logging.DEBUG)
        self.loggers = [logging.getLogger(log.logger().name), logging.getLogger()]
        for lg in self.loggers:
            lg.addHandler(self.handler)

    def text(self) -> str:
        return self.stream.getvalue()

    def events(self) -> list[dict]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line})
        return out

    def close(self) -> None:
        for lg in self.loggers:
            lg.removeHandler(self.handler)


@pytest.fixture
def logs(backend_env) -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture
    capture.close()


# ------------------------------------------------------------------ staff helpers

def step_up(client, outbox, fixed_clock, token, phone, totp_secret=None):
    """Verify a fresh second factor in this session (SMS, or the authenticator app once enrolled)."""
    import pyotp

    fixed_clock.advance(seconds=61)
    r = jpost(client, "/me/step-up", {}, token=token)
    assert r.status_code == 202, r.body
    ch = body(r)
    code = pyotp.TOTP(totp_secret).at(fixed_clock.now()) if totp_secret else outbox.last_code(phone)
    r = jpost(client, "/me/step-up/verify", {"challenge_id": ch["challenge_id"], "code": code}, token=token)
    assert r.status_code == 200, r.body
    return ch


def enrol_totp(client, outbox, fixed_clock, token, phone):
    import pyotp

    step_up(client, outbox, fixed_clock, token, phone)
    r = jpost(client, "/me/totp", {}, token=token)
    assert r.status_code == 201, r.body
    secret = body(r)["secret"]
    r = jpost(client, "/me/totp/confirm", {"code": pyotp.TOTP(secret).at(fixed_clock.now())}, token=token)
    assert r.status_code == 200, r.body
    return secret, body(r)["recovery_codes"]


def make_staff(client, outbox, fixed_clock, phone, role, totp=True):
    """A staff account (doctor or clinic_admin) signed in with an authenticator app."""
    r = jpost(client, "/auth/signup", signup_payload(phone, role=role))
    assert r.status_code == 202, r.body
    tokens = body(jpost(client, "/auth/signup/verify",
                        {"challenge_id": body(r)["challenge_id"], "code": outbox.last_code(phone)}))
    token = tokens["access_token"]
    user_id = body(jpost(client, "/me", token=token, method="get"))["user_id"]
    secret = enrol_totp(client, outbox, fixed_clock, token, phone)[0] if totp else None
    return {"token": token, "user_id": user_id, "phone": phone, "totp": secret}


def relogin(client, staff, fixed_clock):
    """Sign a staff member in again with password and authenticator app (after a long pause)."""
    import pyotp

    fixed_clock.advance(seconds=31)
    r = jpost(client, "/auth/login", {"phone": staff["phone"], "password": PASSWORD})
    assert r.status_code == 202 and body(r)["second_factor"] == "totp", r.body
    code = pyotp.TOTP(staff["totp"]).at(fixed_clock.now())
    r = jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"], "code": code})
    assert r.status_code == 200, r.body
    staff["token"] = body(r)["access_token"]
    return staff


def make_platform_admin(client, outbox, fixed_clock, phone):
    staff = make_staff(client, outbox, fixed_clock, phone, "clinic_admin")
    from chalicelib.bootstrap import identity as service

    service().set_role(phone, "platform_admin")
    return staff


@pytest.fixture
def fake_stripe(monkeypatch):
    """Stripe's Connect endpoints served locally from Stripe's own sample objects."""
    from local.stripe_fake import FakeStripe

    fake = FakeStripe(webhook_secret="whsec_test_secret")
    url = fake.start()
    monkeypatch.setenv("STRIPE_API_BASE", url)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_local_key")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")
    reset_process_state()
    yield fake
    fake.stop()
