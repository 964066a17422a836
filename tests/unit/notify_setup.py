"""Fixtures of the notify tests: a local fake FCM server that firebase-admin's real messaging code talks
to, and helpers to make patients with devices."""
from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.conftest import body, jpost, reset_process_state, sign_up

FCM_TOKEN = "local-fcm-access-token"


@pytest.fixture
def fcm(backend_env, monkeypatch):
    """firebase-admin pointed at a fake FCM HTTP v1 server on 127.0.0.1 (static access token)."""
    from local.fcm_fake import FakeFcm

    fake = FakeFcm(access_token=FCM_TOKEN, project="clinic-test").start()
    for k, v in {"PUSH_GATEWAY": "fcm", "FCM_ENDPOINT": fake.url, "FCM_STATIC_TOKEN": FCM_TOKEN,
                 "FCM_PROJECT_ID": "clinic-test"}.items():
        monkeypatch.setenv(k, v)
    reset_process_state()
    yield fake
    fake.stop()


def fcm_token() -> str:
    """A registration token of FCM's form: an instance id, a colon, a long URL-safe blob."""
    return secrets.token_urlsafe(16) + ":APA91b" + secrets.token_urlsafe(100)


def register(client, access: str, fcm_token_: str | None = None, **over: Any):
    payload = {"token": fcm_token_ or fcm_token(), "platform": "android", "app_version": "3.2.1",
               "language": "en", "time_zone": "Europe/Kaliningrad", **over}
    return jpost(client, "/me/devices", payload, token=access)


def person(client, outbox, phone: str, device: str | None = None) -> dict[str, Any]:
    tokens = sign_up(client, outbox, phone, device=device)
    me = body(jpost(client, "/me", token=tokens["access_token"], method="get"))
    return {"token": tokens["access_token"], "user_id": me["user_id"], "phone": phone}


def another_session(client, outbox, clock, phone: str, device: str) -> str:
    """A second sign-in of the same person (after the SMS cooldown): its access token."""
    from tests.conftest import log_in

    clock.advance(seconds=61)
    return log_in(client, outbox, phone, device=device)["access_token"]
