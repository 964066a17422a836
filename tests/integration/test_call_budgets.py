"""Every operation of openapi.yaml held to a DynamoDB call budget, at realistic data sizes.

The world (tests/integration/budget_world.py) is built once for the module: clinic_setup.world() through the
API, then two years of history cloned into the table (700 past duty shifts of the doctor, 300 sessions
of the patient, 500 waitlist entries for the doctor, 300 past and 120 future visits, a 150-message
chat, a 12-branch clinic, 40 patients in the urgent queue).

Each case makes one realistic successful call as the right role (and, where cheap, a typical failing
one, held to the same budget). The counter (a botocore before-call hook) is reset right before the
request and read right after it, so a budget counts every DynamoDB call the request makes,
**including the authorizer's session read** (one GetItem on every route with ``bearerAuth``).

A budget is the number of calls the code makes today at these sizes, exactly. Where that number grows
with the data, the budget is what it should be and the case is ``xfail(strict=True)`` naming what
grows: when the owner fixes it, the case passes, strict xfail fails, and the mark comes off.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.conftest import PASSWORD, START, CallCounter, base_env, body, reset_process_state
from tests.integration.budget_world import BudgetExceeded, World, batch_put, build, shift_clones
from tests.unit.clinic_setup import SERVICE, branch

ROOT = Path(__file__).resolve().parents[2]
AUTH = 1  # the authorizer's GetItem of the session, on every route with bearerAuth

# operationId -> the most DynamoDB calls one request may make (authorizer included where AUTH is added)
BUDGETS: dict[str, int] = {}

CASES: dict[str, Callable[[World], None]] = {}
XFAIL: dict[str, str] = {}

# operationId -> why its calls grow with the data (the case is then xfail(strict=True) at the budget it should
# have). Empty: the schedule reads of past duty shifts and the per-branch re-listing that grew were fixed.
GROWS: dict[str, str] = {}


def case(op: str, budget: int, xfail: str = ""):
    def register(fn: Callable[[World], None]) -> Callable[[World], None]:
        assert op not in CASES, op
        CASES[op] = fn
        BUDGETS[op] = budget
        if xfail:
            XFAIL[op] = xfail
        return fn
    return register


# ------------------------------------------------------------------ the module's world

@pytest.fixture(scope="module")
def W(dynamodb_local_server):
    """The world on DynamoDB Local (Amazon's engine; moto copies the whole table on every transaction, which
    at these sizes costs minutes), moto for the rest of AWS."""
    import re

    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.core import aws, clock
    from chalicelib.core.ids import new_id
    from local.stripe_fake import STRIPE_COUNTRIES, FakeStripe
    from tests.conftest import Outbox

    # Stripe does not serve Russia (the RU clinic's payouts would be 422); this test is about
    # DynamoDB call counts, so the local Stripe lets its RU clinic onboard. TODO: a DE clinic.
    fake = FakeStripe(webhook_secret="whsec_test_secret", countries=STRIPE_COUNTRIES | {"RU"})
    url = fake.start()
    mp = pytest.MonkeyPatch()
    endpoint = dynamodb_local_server.endpoint
    env = {**base_env(f"test-{new_id().lower()}", endpoint), "STRIPE_API_BASE": url,
           "STRIPE_SECRET_KEY": "sk_test_local_key", "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
           "SMS_PER_CLIENT_PER_HOUR": "100000"}  # every test request comes from one client address
    for k, v in env.items():
        mp.setenv(k, v)
    reset_process_state()
    fc = clock.FixedClock(START)
    clock.set_clock(fc)
    counter = CallCounter()
    try:
        with mock_aws(config={"core": {"mock_credentials": True, "reset_boto3_session": True,
                                       "passthrough": {"urls": [re.escape(endpoint) + ".*"]}}}):
            from chalicelib.core.table import ensure_table

            ensure_table(aws.client("dynamodb"), env["TABLE_NAME"])
            aws.client("sesv2").create_email_identity(EmailIdentity="clinic.example")
            aws.add_hook("before-call.dynamodb", counter)
            from app import app

            with Client(app, stage_name="test") as c:
                w = build(c, Outbox(), fc, counter, fake)
                yield w
                _report(w)
            aws.remove_hook("before-call.dynamodb", counter)
    finally:
        clock.set_clock(clock.SystemClock())
        mp.undo()
        reset_process_state()
        fake.stop()


OBSERVED: dict[str, list[tuple[str, int, list[str]]]] = {}


def _report(w: World) -> None:
    out = os.environ.get("BUDGET_REPORT")
    if out:
        import json

        Path(out).write_text(json.dumps({"sizes": w.sizes, "observed": OBSERVED}, indent=1))


def _spec_operations() -> set[str]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {op["operationId"] for item in spec["paths"].values() for method, op in item.items()
            if method in ("get", "put", "post", "delete", "patch", "head", "options")}


# ------------------------------------------------------------------ meta and portal (no DynamoDB)

@case("health", 0)
def _(W):
    W.call("get", "/health")


@case("getOpenApiYaml", 0)
def _(W):
    W.call("get", "/openapi.yaml")


@case("getOpenApiJson", 0)
def _(W):
    W.call("get", "/openapi.json")


@case("getDocs", 0)
def _(W):
    W.call("get", "/docs")


@case("getConsent", 0)
def _(W):
    W.call("get", "/consent")


@case("getPortal", 0)
def _(W):
    W.call("get", "/portal/")
    W.call("get", "/portal", status=308, label="redirect")


@case("getPortalAsset", 0)
def _(W):
    W.call("get", "/portal/app.js")
    W.call("get", "/portal/secrets.txt", status=404, label="404")


# ------------------------------------------------------------------ sign-up, login, tokens

@case("signUp", 5)
def _(W):
    W.call("post", "/auth/signup", {**_signup(W.phone())}, status=202)


def _signup(phone: str, **over: Any) -> dict:
    from tests.conftest import signup_payload

    return signup_payload(phone, **over)


@case("verifySignUp", 2)
def _(W):
    phone = W.phone()
    ch = W.setup("post", "/auth/signup", _signup(phone), status=202)["challenge_id"]
    code = W.outbox.last_code(phone)
    W.call("post", "/auth/signup/verify", {"challenge_id": ch, "code": "000000" if code != "000000" else "111111"},
           status=400, label="wrong code")
    W.call("post", "/auth/signup/verify", {"challenge_id": ch, "code": code}, status=201)


@case("resendCode", 5)
def _(W):
    phone = W.phone()
    ch = W.setup("post", "/auth/signup", _signup(phone), status=202)["challenge_id"]
    W.sms_gap()
    W.call("post", f"/auth/challenges/{ch}/resend", {}, status=202)
    W.call("post", "/auth/challenges/01JD6Q3D4R5T6V7W8X9Y0Z1A2B/resend", {}, status=400, label="unknown")


@case("logIn", 5)
def _(W):
    # Issue 15: 8 calls before (a read of the failure counter, then its write, SMS cooldown and count apart).
    # Now: phone, the phone's counters (one conditional update), the address counter, user, one transaction
    # (challenge, SMS limits, the counts given back); a device that signed in before skips the address.
    W.sms_gap()
    W.call("post", "/auth/login", {"phone": W.patient["phone"], "password": PASSWORD}, status=202)
    W.call("post", "/auth/login", {"phone": W.patient["phone"], "password": "not the password"}, status=401,
           label="wrong password")
    u = W.new_user()
    W.sms_gap()
    ch = W.setup("post", "/auth/login", {"phone": u["phone"], "password": PASSWORD}, status=202)
    device = W.setup("post", "/auth/login/verify", {"challenge_id": ch["challenge_id"],
                                                    "code": W.outbox.last_code(u["phone"])})["device_token"]
    W.sms_gap()
    W.call("post", "/auth/login", {"phone": u["phone"], "password": PASSWORD, "device_token": device},
           status=202, label="known device")


@case("verifyLogIn", 5)
def _(W):
    W.sms_gap()
    ch = W.setup("post", "/auth/login", {"phone": W.patient["phone"], "password": PASSWORD}, status=202)
    W.call("post", "/auth/login/verify", {"challenge_id": ch["challenge_id"],
                                          "code": W.outbox.last_code(W.patient["phone"])})


@case("refreshTokens", 2)
def _(W):
    s = W.mint(W.patient["user_id"], "patient", "sms")
    W.call("post", "/auth/refresh", {"refresh_token": s["refresh"]})
    W.call("post", "/auth/refresh", {"refresh_token": s["refresh"]}, status=401, label="reuse")


@case("requestPasswordReset", 6)
def _(W):
    u = W.new_user()
    W.sms_gap()
    W.call("post", "/auth/password-reset", {"phone": u["phone"]}, status=202)


@case("confirmPasswordReset", 5)
def _(W):
    u = W.new_user()
    W.sms_gap()
    ch = W.setup("post", "/auth/password-reset", {"phone": u["phone"]}, status=202)["challenge_id"]
    W.call("post", "/auth/password-reset/confirm", {"challenge_id": ch, "code": W.outbox.last_code(u["phone"]),
                                                    "new_password": "another horse battery"}, status=204)


# ------------------------------------------------------------------ the signed-in user

@case("logOut", 2)
def _(W):
    W.call("post", "/auth/logout", {}, token=W.tok("patient"), status=204)


@case("getMe", 2)
def _(W):
    W.call("get", "/me", token=W.tok("patient"))


@case("patchMe", 2)
def _(W):
    t = W.tok("patient")
    version = W.setup("get", "/me", token=t)["version"] if "version" in W.setup("get", "/me", token=t) else None
    W.call("patch", "/me", {"language": "en", **({"version": version} if version else {})}, token=t)


@case("listSessions", 2)
def _(W):
    W.call("get", "/me/sessions", token=W.tok("patient"))


@case("revokeSession", 2)
def _(W):
    other = W.mint(W.patient["user_id"], "patient", "sms")
    t = W.tok("patient")
    W.call("delete", f"/me/sessions/{other['session_id']}", token=t, status=204)
    W.call("delete", f"/me/sessions/{other['session_id']}", token=t, status=404, label="again")


@case("startStepUp", 6)
def _(W):
    W.sms_gap()
    W.call("post", "/me/step-up", {}, token=W.tok("patient"), status=202)


@case("verifyStepUp", 4)
def _(W):
    W.sms_gap()
    t = W.tok("patient")
    ch = W.setup("post", "/me/step-up", {}, token=t, status=202)["challenge_id"]
    W.call("post", "/me/step-up/verify", {"challenge_id": ch, "code": W.outbox.last_code(W.patient["phone"])},
           token=t)


@case("changePassword", 6)
def _(W):
    u = _user_with_history(W)
    W.call("put", "/me/password", {"new_password": "a different horse"}, token=W.tok("patient"), status=403,
           label="no step-up")
    W.call("put", "/me/password", {"new_password": "a different horse"}, token=u, status=204)


def _user_with_history(W) -> str:
    """A patient with the same session history as the world's patient (300: 290 revoked, 10 live);
    a step-up token of theirs."""
    from chalicelib.core import db
    from chalicelib.identity import store
    from tests.integration.budget_world import session_clones

    u = W.new_user()
    live = db.query_prefix(store.user_pk(u["user_id"]), "SESSION#", index="GSI1")[0]
    batch_put(session_clones(live, 290, 9, int(W.clock.now().timestamp())))
    return W.mint(u["user_id"], "patient", "sms", step_up=True)["token"]


@case("startPhoneChange", 7)
def _(W):
    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms", step_up=True)["token"]
    W.call("put", "/me/phone", {"phone": W.phone()}, token=t, status=202)


@case("verifyPhoneChange", 5)
def _(W):
    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms", step_up=True)["token"]
    new = W.phone()
    ch = W.setup("put", "/me/phone", {"phone": new}, token=t, status=202)["challenge_id"]
    W.call("post", "/me/phone/verify", {"challenge_id": ch, "code": W.outbox.last_code(new)}, token=t)


@case("startTotp", 4)
def _(W):
    u = W.new_user()
    W.call("post", "/me/totp", {}, token=W.mint(u["user_id"], "patient", "sms", step_up=True)["token"], status=201)


def _totp_user(W) -> tuple[dict, str]:
    import pyotp

    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms", step_up=True)["token"]
    secret = W.setup("post", "/me/totp", {}, token=t, status=201)["secret"]
    W.setup("post", "/me/totp/confirm", {"code": pyotp.TOTP(secret).at(W.clock.now())}, token=t)
    return u, secret


@case("confirmTotp", 4)
def _(W):
    import pyotp

    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms", step_up=True)["token"]
    secret = W.setup("post", "/me/totp", {}, token=t, status=201)["secret"]
    W.call("post", "/me/totp/confirm", {"code": pyotp.TOTP(secret).at(W.clock.now())}, token=t)


@case("removeTotp", 4)
def _(W):
    u, _ = _totp_user(W)
    W.call("delete", "/me/totp", token=W.mint(u["user_id"], "patient", "totp", step_up=True)["token"], status=204)


@case("regenerateRecoveryCodes", 4)
def _(W):
    u, _ = _totp_user(W)
    W.call("post", "/me/recovery-codes", {}, token=W.mint(u["user_id"], "patient", "totp", step_up=True)["token"])


# ------------------------------------------------------------------ clinic life

from tests.unit.clinic_setup import CLINIC  # noqa: E402


def _draft(W) -> str:
    """A draft clinic of admin B's with one branch (for cases that move a clinic along)."""
    t = W.tok("admin_b")
    cid = W.setup("post", "/clinics", CLINIC, token=t, status=201)["clinic_id"]
    W.setup("post", f"/clinics/{cid}/branches", branch(), token=t, status=201)
    return cid


@case("createClinic", 2)
def _(W):
    W.call("post", "/clinics", CLINIC, token=W.tok("admin_b"), status=201)


@case("myClinics", 3)
def _(W):
    W.call("get", "/me/clinics", token=W.tok("admin_a"))


@case("getClinic", 3)
def _(W):
    t = W.tok("admin_a")
    W.call("get", f"/clinics/{W.cid}", token=t)
    W.call("get", f"/clinics/{W.w['b']['clinic_id']}", token=t, status=404, label="another tenant")


@case("patchClinic", 6)
def _(W):
    t = W.tok("admin_a")
    v = W.setup("get", f"/clinics/{W.cid}", token=t)["version"]
    W.call("patch", f"/clinics/{W.cid}", {"display_name": {"ru": "Здоровье+", "en": "Zdorovye+"}, "version": v},
           token=t)
    W.call("patch", f"/clinics/{W.cid}", {"display_name": {"ru": "Здоровье", "en": "Zdorovye"}, "version": v},
           token=t, status=409, label="stale version")


@case("submitClinic", 5)
def _(W):
    cid = _draft(W)
    W.call("post", f"/clinics/{cid}/submit", {}, token=W.tok("admin_b"))
    W.call("post", f"/clinics/{cid}/submit", {}, token=W.tok("admin_b"), status=409, label="twice")


@case("verifyClinic", 3)
def _(W):
    cid = _draft(W)
    W.setup("post", f"/clinics/{cid}/submit", {}, token=W.tok("admin_b"))
    W.call("post", f"/clinics/{cid}/verify", {}, token=W.tok("platform"))


@case("rejectClinic", 3)
def _(W):
    cid = _draft(W)
    W.setup("post", f"/clinics/{cid}/submit", {}, token=W.tok("admin_b"))
    W.call("post", f"/clinics/{cid}/reject", {"reason": "the tax id does not match"}, token=W.tok("platform"))


@case("activateClinic", 7)
def _(W):
    cid = _draft(W)
    W.setup("post", f"/clinics/{cid}/submit", {}, token=W.tok("admin_b"))
    W.setup("post", f"/clinics/{cid}/verify", {}, token=W.tok("platform"))
    W.call("post", f"/clinics/{cid}/activate", {}, token=W.tok("admin_b"))


@case("reviewQueue", 2)
def _(W):
    W.call("get", "/admin/clinics?status=submitted", token=W.tok("platform"))


# ------------------------------------------------------------------ administrators and invitations

@case("listAdmins", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/admins", token=W.tok("admin_a"))


@case("removeAdmin", 5)
def _(W):
    from chalicelib.clinics import store
    from chalicelib.core import clock, db
    from chalicelib.core.ids import new_id

    other = new_id()
    db.put_new(store.admin_item(W.cid, other, clock.epoch()))
    db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(store.clinic_pk(W.cid), "PROFILE"),
                         UpdateExpression="ADD admin_count :one", ExpressionAttributeValues=db.values(one=1))
    t = W.tok("admin_a")
    W.call("delete", f"/clinics/{W.cid}/admins/{other}", token=t, status=204)
    W.call("delete", f"/clinics/{W.cid}/admins/{other}", token=t, status=404, label="gone")


@case("invite", 5)
def _(W):
    W.call("post", f"/clinics/{W.cid}/invitations", {"role": "doctor", "phone": W.phone()}, token=W.tok("admin_a"),
           status=201)


@case("listInvitations", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/invitations", token=W.tok("admin_a"))


@case("revokeInvitation", 5)
def _(W):
    t = W.tok("admin_a")
    inv = W.setup("post", f"/clinics/{W.cid}/invitations", {"role": "doctor", "phone": W.phone()}, token=t,
                  status=201)["invitation_id"]
    W.call("delete", f"/clinics/{W.cid}/invitations/{inv}", token=t, status=204)
    W.call("delete", f"/clinics/{W.cid}/invitations/{inv}", token=t, status=409, label="twice")


@case("acceptInvitation", 9)
def _(W):
    doc = W.new_user("doctor")
    inv = W.setup("post", f"/clinics/{W.cid}/invitations", {"role": "doctor", "phone": doc["phone"]},
                  token=W.tok("admin_a"), status=201)["invitation_id"]
    t = W.mint(doc["user_id"], "doctor", "totp")["token"]
    W.call("post", "/invitations/accept", {"invitation_id": inv, "code": W.outbox.last_code(doc["phone"])}, token=t)


# ------------------------------------------------------------------ branches, resources, services, policies

@case("addBranch", 4)
def _(W):
    W.call("post", f"/clinics/{W.cid}/branches", branch(name="Север"), token=W.tok("admin_a"), status=201)


@case("listBranches", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/branches", token=W.tok("admin_a"))


@case("patchBranch", 5)
def _(W):
    t = W.tok("admin_a")
    b = W.setup("post", f"/clinics/{W.cid}/branches", branch(name="Юг"), token=t, status=201)
    W.call("patch", f"/clinics/{W.cid}/branches/{b['branch_id']}", {"phone": "+74012123499", "version": 1}, token=t)


@case("addResource", 5)
def _(W):
    W.call("post", f"/clinics/{W.cid}/branches/{W.bid}/resources", {"kind": "ct", "name": "CT 64", "capacity": 1},
           token=W.tok("admin_a"), status=201)


@case("listResources", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/resources", token=W.tok("admin_a"))


@case("addService", 4)
def _(W):
    W.call("post", f"/clinics/{W.cid}/services", {**SERVICE, "name": {"ru": "КТ", "en": "CT"}, "resource_kinds": []},
           token=W.tok("admin_a"), status=201)


@case("listServices", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/services", token=W.tok("admin_a"))


@case("patchService", 5)
def _(W):
    t = W.tok("admin_a")
    sid = W.setup("post", f"/clinics/{W.cid}/services", {**SERVICE, "name": {"ru": "УЗИ", "en": "US"},
                                                          "resource_kinds": []}, token=t, status=201)["service_id"]
    W.call("patch", f"/clinics/{W.cid}/services/{sid}", {"recall_after_days": 90, "version": 1}, token=t)


@case("setPolicies", 4)
def _(W):
    cid = W.w["b"]["clinic_id"]
    W.call("put", f"/clinics/{cid}/policies", {"cancellation_window_hours": 48}, token=W.tok("admin_b"))


@case("startPayouts", 4)
def _(W):
    cid = _draft(W)
    W.call("post", f"/clinics/{cid}/payouts/onboarding", {}, token=W.tok("admin_b"), status=201)
    W.call("post", f"/clinics/{cid}/payouts/onboarding", {}, token=W.tok("admin_b"), status=201, label="again")


@case("getPayouts", 3)
def _(W):
    W.call("get", f"/clinics/{W.cid}/payouts", token=W.tok("admin_a"))


@case("stripeWebhook", 2)
def _(W):
    import json

    from local.stripe_fake import sign

    cid = _draft(W)
    acct = W.setup("post", f"/clinics/{cid}/payouts/onboarding", {}, token=W.tok("admin_b"), status=201)["account_id"]
    payload = json.dumps(W.stripe.complete_onboarding(acct)).encode()
    for label, secret in (("ok", "whsec_test_secret"), ("replay", "whsec_test_secret"), ("forged", "whsec_wrong")):
        r = W.raw("post", "/webhooks/stripe", body=payload, headers={"Content-Type": "application/json",
                                                                    "Stripe-Signature": sign(payload, secret)})
        assert r.status_code == (400 if label == "forged" else 200), r.body


# ------------------------------------------------------------------ doctors and schedules

SHIFTS = "the doctor's 700 past duty shifts"


@case("listDoctors", 4)
def _(W):
    W.call("get", f"/clinics/{W.cid}/doctors", token=W.tok("admin_a"))


@case("removeDoctor", 11)
def _(W):
    from chalicelib.clinics import store
    from chalicelib.core import db

    doc = W.new_user("doctor")
    t = W.tok("admin_a")
    inv = W.setup("post", f"/clinics/{W.cid}/invitations", {"role": "doctor", "phone": doc["phone"]}, token=t,
                  status=201)["invitation_id"]
    dt = W.mint(doc["user_id"], "doctor", "totp")["token"]
    W.setup("post", "/invitations/accept", {"invitation_id": inv, "code": W.outbox.last_code(doc["phone"])}, token=dt)
    from tests.unit.clinic_setup import DOCTOR_PROFILE

    W.setup("put", "/me/doctor-profile", DOCTOR_PROFILE, token=dt)
    W.setup("post", f"/clinics/{W.cid}/doctors/{doc['user_id']}/duty-shifts",
            {"branch_id": W.bid, "specialty": "cardiologist", "starts_at": "2026-12-05T20:00",
             "ends_at": "2026-12-06T06:00"}, token=t, status=201)
    sample = db.query_prefix(store.doctor_pk(doc["user_id"]), "DUTY#")[0]
    batch_put(shift_clones(sample, doc["user_id"], 700, sample_day(W)))
    W.call("delete", f"/clinics/{W.cid}/doctors/{doc['user_id']}", token=t, status=204)


def sample_day(W):
    return W.clock.now().date()


@case("clinicSchedule", 7)
def _(W):
    W.call("get", f"/clinics/{W.cid}/doctors/{W.did}/schedule", token=W.tok("admin_a"))


def _sched(W, kind: str, payload: dict, status: int = 201, label: str = "ok"):
    return W.call("post", f"/clinics/{W.cid}/doctors/{W.did}/{kind}", payload, token=W.tok("admin_a"),
                  status=status, label=label)


@case("addTemplate", 15)
def _(W):
    _sched(W, "templates", {"branch_id": W.bid, "modality": "video", "weekday": "fri", "start": "14:00",
                            "end": "15:00"})
    _sched(W, "templates", {"branch_id": W.bid, "modality": "video", "weekday": "mon", "start": "10:00",
                            "end": "11:00"}, status=409, label="overlap")


@case("addException", 10)
def _(W):
    _sched(W, "exceptions", {"kind": "extra", "date_from": "2026-12-12", "date_until": "2026-12-12",
                             "start": "14:00", "end": "16:00", "branch_id": W.bid, "modality": "in_person"})


@case("addDutyShift", 11)
def _(W):
    _sched(W, "duty-shifts", {"branch_id": W.bid, "specialty": "cardiologist", "starts_at": "2026-12-01T20:00",
                              "ends_at": "2026-12-02T06:00"})
    _sched(W, "duty-shifts", {"branch_id": W.bid, "specialty": "cardiologist", "starts_at": "2026-12-01T21:00",
                              "ends_at": "2026-12-02T05:00"}, status=409, label="overlap")


def _del(W, kind: str, item_id: str, status: int = 204, label: str = "ok"):
    W.call("delete", f"/clinics/{W.cid}/doctors/{W.did}/{kind}/{item_id}", token=W.tok("admin_a"), status=status,
           label=label)


@case("deleteTemplate", 11)
def _(W):
    item = W.setup("post", f"/clinics/{W.cid}/doctors/{W.did}/templates",
                   {"branch_id": W.bid, "modality": "video", "weekday": "sun", "start": "16:00", "end": "17:00"},
                   token=W.tok("admin_a"), status=201)["item_id"]
    _del(W, "templates", item)


@case("deleteException", 7)
def _(W):
    item = W.setup("post", f"/clinics/{W.cid}/doctors/{W.did}/exceptions",
                   {"kind": "leave", "date_from": "2027-01-04", "date_until": "2027-01-05"},
                   token=W.tok("admin_a"), status=201)["item_id"]
    _del(W, "exceptions", item)
    _del(W, "exceptions", item, status=404, label="gone")


@case("deleteDutyShift", 7)
def _(W):
    item = W.setup("post", f"/clinics/{W.cid}/doctors/{W.did}/duty-shifts",
                   {"branch_id": W.bid, "specialty": "cardiologist", "starts_at": "2026-12-03T20:00",
                    "ends_at": "2026-12-04T06:00"}, token=W.tok("admin_a"), status=201)["item_id"]
    _del(W, "duty-shifts", item)


@case("getDoctorProfile", 2)
def _(W):
    W.call("get", "/me/doctor-profile", token=W.tok("doctor"))


@case("putDoctorProfile", 8)
def _(W):
    from tests.unit.clinic_setup import DOCTOR_PROFILE

    W.call("put", "/me/doctor-profile", DOCTOR_PROFILE, token=W.tok("doctor"))


@case("mySchedule", 4)
def _(W):
    W.call("get", "/me/schedule", token=W.tok("doctor"))


# the doctor's own leave: write it, then read their future visits in every clinic that it may hit
@case("addMyLeave", 3)
def _(W):
    W.call("post", "/me/schedule/leave", {"date_from": "2027-01-11", "date_until": "2027-01-12"},
           token=W.tok("doctor"), status=201)


@case("deleteMyLeave", 4)
def _(W):
    item = W.setup("post", "/me/schedule/leave", {"date_from": "2027-01-18", "date_until": "2027-01-18"},
                   token=W.tok("doctor"), status=201)["item_id"]
    W.call("delete", f"/me/schedule/leave/{item}", token=W.tok("doctor"), status=204)
    W.call("delete", f"/me/schedule/leave/{item}", token=W.tok("doctor"), status=404, label="gone")


# ------------------------------------------------------------------ public catalogue

@case("catalogClinics", 1)
def _(W):
    W.call("get", "/catalog/clinics?city=Калининград")


@case("catalogClinic", 2)
def _(W):
    W.call("get", f"/catalog/clinics/{W.cid}")
    W.call("get", f"/catalog/clinics/{W.w['b']['clinic_id']}", status=404, label="draft")


@case("catalogServices", 2)
def _(W):
    W.call("get", f"/catalog/clinics/{W.cid}/services")


@case("catalogDoctors", 1)
def _(W):
    W.call("get", "/catalog/doctors?specialty=cardiologist")
    W.call("get", f"/catalog/doctors?clinic_id={W.cid}", label="by clinic")


@case("catalogDoctor", 2)
def _(W):
    W.call("get", f"/catalog/doctors/{W.did}")


@case("freeSlots", 5)
def _(W):
    W.call("get", f"/catalog/doctors/{W.did}/slots?clinic_id={W.cid}&service_id={W.w['service_id']}"
                  f"&date_from=2026-11-30&date_to=2026-12-13")


# ------------------------------------------------------------------ bookings

def _booking_body(W, start: str, service_id: str | None = None) -> dict:
    return {"clinic_id": W.cid, "service_id": service_id or W.w["service_id"], "doctor_id": W.did, "start": start}


@case("createBooking", 6)
def _(W):
    t = W.tok("patient")
    start = W.free()
    W.call("post", "/bookings", _booking_body(W, start), token=t, headers={"Idempotency-Key": "budget-create-1"},
           status=201)
    W.call("post", "/bookings", _booking_body(W, start), token=t, headers={"Idempotency-Key": "budget-create-1"},
           label="replay")
    W.call("post", "/bookings", _booking_body(W, start), token=t, status=409, label="taken")


@case("getBooking", 3)
def _(W):
    W.call("get", f"/bookings/{W.visit['booking_id']}", token=W.tok("patient"))
    W.call("get", f"/bookings/{W.visit['booking_id']}", token=W.tok("admin_a"), label="clinic")
    W.call("get", "/bookings/01JD6Q3D4R5T6V7W8X9Y0Z1A2B", token=W.tok("patient"), status=404, label="404")


@case("cancelBooking", 4)
def _(W):
    b = W.book()
    t = W.tok("patient")
    W.call("post", f"/bookings/{b['booking_id']}/cancel", {}, token=t)
    W.call("post", f"/bookings/{b['booking_id']}/cancel", {}, token=t, status=409, label="twice")


@case("rescheduleBooking", 6)
def _(W):
    b = W.book()
    W.call("post", f"/bookings/{b['booking_id']}/reschedule", {"start": W.free()}, token=W.tok("patient"))


@case("reassignBooking", 7)
def _(W):
    from chalicelib.clinics import store as cstore
    from chalicelib.core import db
    from chalicelib.core.ids import new_id

    other = new_id()  # a second doctor of clinic A with the same Monday hours (written as the API writes them)
    db.put_new({**cstore.doctor_membership_item(W.cid, other, 0), "specialties": [SERVICE["specialty"]]})
    tid = new_id()
    cstore.put_schedule_item(cstore.template_item(other, W.cid, tid, {
        "branch_id": W.bid, "modality": "in_person", "weekday": "mon", "start": "09:00", "end": "13:00"},
        "Europe/Kaliningrad", 0))
    b = W.book()
    W.call("post", f"/bookings/{b['booking_id']}/reassign", {"doctor_id": other}, token=W.tok("admin_a"))


@case("confirmPayment", 5)
def _(W):
    b = W.book(service_id=W.prepaid)
    assert b["status"] == "held", b
    t = W.tok("admin_a")
    W.call("post", f"/bookings/{b['booking_id']}/confirm-payment", {}, token=t)
    W.call("post", f"/bookings/{b['booking_id']}/confirm-payment", {}, token=t, status=409, label="twice")


def _started(W, b: dict, fn):
    start = datetime.fromisoformat(b["start"]["utc"].replace("Z", "+00:00")) if isinstance(b["start"], dict) \
        else datetime.fromisoformat(b["start"].replace("Z", "+00:00"))
    return W.at(start + timedelta(minutes=5), fn)


@case("completeVisit", 4)
def _(W):
    b = W.book()
    _started(W, b, lambda: W.call("post", f"/bookings/{b['booking_id']}/complete", {}, token=W.tok("doctor")))


@case("markNoShow", 4)
def _(W):
    b = W.book()
    _started(W, b, lambda: W.call("post", f"/bookings/{b['booking_id']}/no-show", {}, token=W.tok("doctor")))


def _proposal(W) -> dict:
    """The doctor invites the patient (they have had a visit, so they are the doctor's patient)."""
    return W.setup("post", "/visit-invitations", {"patient_id": W.patient["user_id"], "clinic_id": W.cid,
                                                  "service_id": W.w["service_id"], "start": W.free()},
                   token=W.tok("doctor"), status=201)


@case("inviteToVisit", 6)
def _(W):
    t = W.tok("doctor")
    W.call("post", "/visit-invitations", {"patient_id": W.patient["user_id"], "clinic_id": W.cid,
                                          "service_id": W.w["service_id"], "start": W.free(),
                                          "note": "a check-up after the treatment"}, token=t, status=201)
    W.call("post", "/visit-invitations", {"patient_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2B", "clinic_id": W.cid,
                                          "service_id": W.w["service_id"], "start": W.free()}, token=t, status=404,
           label="not a patient")


@case("acceptBooking", 3)
def _(W):
    b = _proposal(W)
    W.call("post", f"/bookings/{b['booking_id']}/accept", {}, token=W.tok("patient"))


@case("declineBooking", 3)
def _(W):
    b = _proposal(W)
    W.call("post", f"/bookings/{b['booking_id']}/decline", {}, token=W.tok("patient"))


@case("myBookings", 2)
def _(W):
    t = W.tok("patient")
    W.call("get", "/me/bookings", token=t)
    W.call("get", "/me/bookings?when=past&limit=100", token=t, label="past")


@case("joinVideo", 2)
def _(W):
    b = W.book(service_id=W.video)
    _started(W, b, lambda: W.call("get", f"/bookings/{b['booking_id']}/video", token=W.tok("patient")))
    W.call("get", f"/bookings/{b['booking_id']}/video", token=W.tok("patient"), status=409, label="not open yet")


@case("postMessage", 3)
def _(W):
    W.call("post", f"/bookings/{W.chat_visit['booking_id']}/messages", {"text": "Thank you, doctor."},
           token=W.tok("patient"), status=201)
    W.call("post", f"/bookings/{W.visit['booking_id']}/messages", {"text": "hello"}, token=W.tok("patient"),
           status=409, label="not a chat")


@case("listMessages", 4)
def _(W):
    W.call("get", f"/bookings/{W.chat_visit['booking_id']}/messages?limit=100", token=W.tok("doctor"))


@case("bookingIcs", 2)
def _(W):
    W.call("get", f"/bookings/{W.visit['booking_id']}/ics", token=W.tok("patient"))


@case("myAgenda", 3)
def _(W):
    W.call("get", "/me/agenda?date_from=2026-11-24&date_to=2026-12-24", token=W.tok("doctor"))
    W.call("get", "/me/agenda?date_from=2026-11-28&date_to=2026-12-06&time_zone=Europe/Kaliningrad",
           token=W.tok("doctor"), label="in a zone")


@case("myCalendarFeed", 1)
def _(W):
    W.call("get", "/me/calendar-feed", token=W.tok("doctor"))


@case("calendarFeed", 2)
def _(W):
    url = W.setup("get", "/me/calendar-feed", token=W.tok("doctor"))["url"]
    token = url.rsplit("/", 1)[1]
    r = W.raw("get", f"/calendar/{token}")
    assert r.status_code == 200, r.body
    r = W.raw("get", f"/calendar/{W.did}.0000.ics")
    assert r.status_code == 404, r.body


@case("clinicCalendar", 4)
def _(W):
    t = W.tok("admin_a")
    W.call("get", f"/clinics/{W.cid}/calendar?date_from=2026-11-24&date_to=2026-12-24", token=t)
    W.call("get", f"/clinics/{W.cid}/calendar?date_from=2026-11-24&date_to=2026-12-24&doctor_id={W.did}"
                  f"&time_zone=Europe/Kaliningrad", token=t, label="one doctor, a zone")


# ------------------------------------------------------------------ waitlist and urgent queue

def _wait_body(W) -> dict:
    return {"clinic_id": W.cid, "service_id": W.w["service_id"], "doctor_id": W.did, "date_from": "2026-12-01",
            "date_to": "2026-12-20"}


@case("joinWaitlist", 5)
def _(W):
    W.call("post", "/waitlist", _wait_body(W), token=W.tok("patient"), status=201)


@case("myWaitlist", 2)
def _(W):
    W.call("get", "/me/waitlist?limit=100", token=W.tok("patient"))


@case("leaveWaitlist", 3)
def _(W):
    t = W.tok("patient")
    wid = W.setup("post", "/waitlist", _wait_body(W), token=t, status=201)["waitlist_id"]
    W.call("delete", f"/waitlist/{wid}", token=t, status=204)
    W.call("delete", f"/waitlist/{wid}", token=t, status=404, label="gone")


def _queued(W) -> str:
    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms")["token"]
    W.setup("post", "/urgent/cardiologist/queue", {"modality": "video"}, token=t, status=201)
    return t


# joining and the queue status read the agenda of each duty doctor on shift (one here) for the estimated wait
@case("joinUrgentQueue", 7)
def _(W):
    u = W.new_user()
    t = W.mint(u["user_id"], "patient", "sms")["token"]
    W.call("post", "/urgent/cardiologist/queue", {"modality": "video", "complaint": "chest pain"}, token=t,
           status=201)
    W.call("post", "/urgent/cardiologist/queue", {"modality": "video"}, token=t, status=409, label="twice")


@case("urgentQueueStatus", 6)
def _(W):
    W.call("get", "/urgent/cardiologist/queue/me", token=_queued(W))


@case("leaveUrgentQueue", 4)
def _(W):
    t = _queued(W)
    W.call("delete", "/urgent/cardiologist/queue/me", token=t, status=204)
    W.call("delete", "/urgent/cardiologist/queue/me", token=t, status=404, label="gone")


@case("takeUrgent", 6)  # session, shifts now, memberships, leave now, the queue page, the take
def _(W):
    W.call("post", "/urgent/cardiologist/take", {}, token=W.tok("doctor"))
    W.call("post", "/urgent/cardiologist/take", {}, token=W.tok("admin_a"), status=403, label="not a doctor")


# ------------------------------------------------------------------ medical records (100 entries, 150 log items)

CARD = "/me/card"


@case("getMyCard", AUTH + 1)  # the whole card: one query of its partition
def _(W):
    W.call("get", CARD, token=W.tok("patient"))


@case("exportMyCard", AUTH + 2)  # the card's partition and the access log (150 items), each one query
def _(W):
    W.call("get", f"{CARD}/export", token=W.tok("patient"))


@case("addCardEntry", AUTH + 1)  # one transaction: the entry and its section's count
def _(W):
    W.call("post", f"{CARD}/notes", {"text": "Tonsillectomy, 1998"}, token=W.tok("patient"), status=201)
    W.call("post", f"{CARD}/vaccinations", {"vaccine": "Flu", "date": "2027-01-01"}, token=W.tok("patient"),
           status=422, label="in the future")


@case("editCardEntry", AUTH + 2)  # the current version, then one transaction (history + new version)
def _(W):
    eid = W.card_entries["allergies"][0]
    W.call("put", f"{CARD}/allergies/{eid}", {"substance": "Latex", "severity": "mild"}, token=W.tok("patient"))


@case("deleteCardEntry", AUTH + 2)  # the current version, then one transaction (history, tombstone, count)
def _(W):
    eid = W.card_entries["notes"][-1]
    W.call("delete", f"{CARD}/notes/{eid}", token=W.tok("patient"), status=204)


@case("cardEntryVersions", AUTH + 2)
def _(W):
    eid = W.card_entries["allergies"][1]
    W.call("get", f"{CARD}/allergies/{eid}/versions", token=W.tok("patient"))


@case("grantCardAccess", AUTH + 2)  # which clinics the doctor works in, then the grant
def _(W):
    until = (W.clock.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    W.call("post", "/me/card-grants", {"doctor_id": W.did, "sections": ["notes"], "until": until},
           token=W.tok("patient"), status=201)


@case("myCardGrants", AUTH + 1)
def _(W):
    W.call("get", "/me/card-grants", token=W.tok("patient"))


@case("revokeCardGrant", AUTH + 2)
def _(W):
    t = W.tok("patient")
    until = (W.clock.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gid = W.setup("post", "/me/card-grants", {"clinic_id": W.cid, "until": until}, token=t, status=201)["grant_id"]
    W.call("delete", f"/me/card-grants/{gid}", token=t, status=204)


@case("myCardAccessLog", AUTH + 1)
def _(W):
    W.call("get", "/me/card-access-log?limit=100", token=W.tok("patient"))


@case("myPatients", AUTH + 1)  # one query per page
def _(W):
    first = W.call("get", "/me/patients?limit=100", token=W.tok("doctor"))
    W.call("get", f"/me/patients?limit=100&cursor={body(first)['next_cursor']}", token=W.tok("doctor"),
           label="page 2")


@case("sharedCard", AUTH + 3)  # 3 reads (session, the card, the doctor's clinics) + 1 write (the access event)
def _(W):
    W.call("get", f"/patients/{W.patient['user_id']}/card", token=W.tok("doctor"))


@case("exportSharedCard", AUTH + 3)  # session, card, the doctor's clinics (a clinic grant) + the access event
def _(W):
    W.call("get", f"/patients/{W.patient['user_id']}/card/export", token=W.tok("doctor"))
    W.call("get", f"/patients/{W.patient['user_id']}/card/export", token=W.tok("admin_a"), status=403,
           label="not a doctor")


@case("doctorAddCardEntry", AUTH + 3)  # session, card, clinics; one transaction with the access event
def _(W):
    W.call("post", f"/patients/{W.patient['user_id']}/card/medications", {"name": "Bisoprolol", "dose": "5 mg"},
           token=W.tok("doctor"), status=201)


DOC = {"name": "Knee MRI.pdf", "content_type": "application/pdf", "size_bytes": 64}


def _document(W, complete: bool = True) -> str:
    from tests.unit.test_records_documents import upload_as_the_browser_would

    t = W.tok("patient")
    doc = W.setup("post", "/me/card/documents", DOC, token=t, status=201)
    upload_as_the_browser_would(doc["upload"], b"%PDF-" + b"x" * 59)
    if complete:
        W.setup("post", f"/me/card/documents/{doc['document_id']}/complete", {}, token=t)
    return doc["document_id"]


@case("startDocumentUpload", AUTH + 1)  # the pending document (S3 and KMS are not DynamoDB calls)
def _(W):
    W.call("post", "/me/card/documents", DOC, token=W.tok("patient"), status=201)
    W.call("post", "/me/card/documents", {**DOC, "size_bytes": 10**9}, token=W.tok("patient"), status=422,
           label="too large")


@case("completeDocumentUpload", AUTH + 2)
def _(W):
    did = _document(W, complete=False)
    W.call("post", f"/me/card/documents/{did}/complete", {}, token=W.tok("patient"))


@case("downloadMyDocument", AUTH + 1)  # the card's partition
def _(W):
    W.call("get", f"/me/card/documents/{_document(W)}/download", token=W.tok("patient"))


@case("downloadSharedDocument", AUTH + 3)  # session, card, the doctor's clinics (a clinic grant) + the access event
def _(W):
    W.call("get", f"/patients/{W.patient['user_id']}/card/documents/{_document(W)}/download", token=W.tok("doctor"))


@case("startDoctorDocumentUpload", AUTH + 3)  # session, card, the doctor's clinics; the document + access event
def _(W):
    W.call("post", f"/patients/{W.patient['user_id']}/card/documents", DOC, token=W.tok("doctor"), status=201)


@case("completeDoctorDocumentUpload", AUTH + 2)  # the document, then marking it available
def _(W):
    from tests.unit.test_records_documents import upload_as_the_browser_would

    base = f"/patients/{W.patient['user_id']}/card/documents"
    doc = W.setup("post", base, DOC, token=W.tok("doctor"), status=201)
    upload_as_the_browser_would(doc["upload"], b"%PDF-" + b"x" * 59)
    W.call("post", f"{base}/{doc['document_id']}/complete", {}, token=W.tok("doctor"))


CONCLUSION = {"complaints": "Cough for two weeks", "findings": "Wheezing", "diagnosis": "Bronchial asthma",
              "icd10": "J45.0", "recommendations": "Budesonide twice a day", "observation_months": 6}


def _completed(W, fn, state: str = "completed"):
    """A visit of the patient, completed by the doctor; ``fn(path)`` runs while it has just ended, with the
    conclusion in ``state`` (completed: none yet; draft; signed)."""
    b = W.book()
    path = f"/bookings/{b['booking_id']}/conclusion"

    def then():
        W.setup("post", f"/bookings/{b['booking_id']}/complete", {}, token=W.tok("doctor"))
        if state in ("draft", "signed"):
            W.setup("put", path, CONCLUSION, token=W.tok("doctor"))
        if state == "signed":
            W.setup("post", f"{path}/sign", {}, token=W.tok("doctor"))
        return fn(path)
    return _started(W, b, then)


@case("saveConclusionDraft", AUTH + 4)  # the booking, the doctor's membership, the versions; one transaction
def _(W):
    _completed(W, lambda path: W.call("put", path, CONCLUSION, token=W.tok("doctor")))


@case("signConclusion", AUTH + 4)
def _(W):
    _completed(W, lambda path: W.call("post", f"{path}/sign", {}, token=W.tok("doctor")), "draft")


@case("amendConclusion", AUTH + 4)
def _(W):
    _completed(W, lambda path: W.call("post", f"{path}/amendments", {**CONCLUSION, "icd10": "J45.1"},
                                      token=W.tok("doctor"), status=201), "signed")


@case("visitConclusion", AUTH + 4)  # the doctor's read: booking, membership, versions + the access event
def _(W):
    def both(path):
        W.call("get", path, token=W.tok("doctor"))
        W.call("get", path, token=W.tok("patient"), label="the patient")
    _completed(W, both, "signed")
# ------------------------------------------------------------------ notifications: devices and the inbox

def _fcm_token() -> str:
    import secrets

    return secrets.token_urlsafe(16) + ":APA91b" + secrets.token_urlsafe(100)


@case("registerDevice", 4)
def _(W):
    t = W.tok("patient")
    payload = {"token": _fcm_token(), "platform": "ios", "app_version": "3.2.1", "language": "ru",
               "time_zone": "Asia/Sakhalin"}
    W.call("post", "/me/devices", payload, token=t, status=201)
    W.call("post", "/me/devices", payload, token=t, status=200, label="refresh")


@case("listDevices", 3)
def _(W):
    W.call("get", "/me/devices", token=W.tok("patient"))


@case("removeDevice", 3)
def _(W):
    t = W.tok("patient")
    did = W.setup("post", "/me/devices", {"token": _fcm_token(), "platform": "web", "app_version": "3.2.1",
                                          "language": "en", "time_zone": "Europe/Berlin"}, token=t,
                  status=201)["device_id"]
    W.call("delete", f"/me/devices/{did}", token=t, status=204)
    W.call("delete", f"/me/devices/{did}", token=t, status=404, label="gone")


@case("myInbox", 3)
def _(W):
    t = W.tok("patient")
    page = body(W.call("get", "/me/inbox?limit=100", token=t))
    W.call("get", f"/me/inbox?limit=100&cursor={page['next_cursor']}", token=t, label="second page")


@case("markMessageRead", 4)
def _(W):
    t = W.tok("patient")
    first = W.setup("get", "/me/inbox?limit=1", token=t)["items"][0]["message_id"]
    W.call("post", f"/me/inbox/{first}/read", {}, token=t)
    W.call("post", f"/me/inbox/{first}/read", {}, token=t, label="again")


@case("markAllRead", 4)
def _(W):
    W.call("post", "/me/inbox/read-all", {}, token=W.tok("patient"))


@case("getNotificationSettings", 2)
def _(W):
    W.call("get", "/me/notification-settings", token=W.tok("patient"))


@case("setNotificationSettings", 2)
def _(W):
    W.call("put", "/me/notification-settings", {"recall": {"push": True, "sms": False},
                                                "quiet_hours": {"start": "22:30", "end": "07:00"},
                                                "time_zone": "Asia/Sakhalin"}, token=W.tok("patient"))
    W.call("put", "/me/notification-settings", {"service": {"push": False, "sms": False}}, token=W.tok("patient"),
           status=422, label="service off")


@case("giveFeedback", 3)
def _(W):
    from chalicelib.booking import store as bstore
    from chalicelib.core import db

    # one of the patient's 300 past visits (completed)
    past = db.query_all("GSI1PK = :pk AND GSI1SK < :now", db.values(pk=f"PATIENT#{W.patient['user_id']}",
                                                                     now="2026-11-20"), index="GSI1", cap=1000)
    done = [b for b in past if b.get("status") == "completed" and b.get("type") == "booking"]
    bid = done[len(OBSERVED) % len(done)]["booking_id"]
    assert bstore.get_booking(bid)["status"] == "completed"
    t = W.tok("patient")
    W.call("post", "/feedback", {"booking_id": bid, "score": 9, "comment": "Спасибо"}, token=t, status=201)
    W.call("post", "/feedback", {"booking_id": bid, "score": 9}, token=t, status=409, label="twice")


@case("clinicFeedback", 6)  # a period reads the branches too (the zone of its local days)
def _(W):
    t = W.tok("admin_a")
    W.call("get", f"/clinics/{W.cid}/feedback?limit=50", token=t)
    W.call("get", f"/clinics/{W.cid}/feedback?limit=50&doctor_id={W.did}", token=t, label="one doctor")
    W.call("get", f"/clinics/{W.cid}/feedback?limit=50&date_from=2026-11-01&date_to=2026-11-30", token=t,
           label="a period")


def _wallet(W) -> str:
    """The patient's wallet at clinic A: one completed visit and 150 payments that spent from it (3 pages)."""
    from chalicelib import bootstrap
    from chalicelib.core import clock
    from chalicelib.core.ids import new_id
    from tests.unit import wallet_world as ww

    if getattr(W, "wallet_ready", False):
        return W.cid
    wallet, pid, bid = bootstrap.wallet(), W.patient["user_id"], new_id()
    wallet.on_payment_succeeded({"payment_id": new_id(), "booking_id": bid, "patient_id": pid, "clinic_id": W.cid,
                                 "amount": 650_000, "currency": "RUB"})
    wallet.on_booking_completed({"booking_id": bid, "patient_id": pid, "clinic_id": W.cid})
    for _ in range(150):
        ww.spend(pid, W.cid, 100, clock.now())
    W.wallet_ready = True
    return W.cid


@case("myWallets", AUTH + 1)
def _(W):
    _wallet(W)
    W.call("get", "/me/wallets?limit=50", token=W.tok("patient"))


@case("myWallet", AUTH + 2)
def _(W):
    cid = _wallet(W)
    t = W.tok("patient")
    page = body(W.call("get", f"/me/wallets/{cid}?limit=50", token=t))
    assert len(page["entries"]) == 50 and page["next_cursor"]
    W.call("get", f"/me/wallets/{cid}?limit=50&cursor={page['next_cursor']}", token=t, label="second page")


@case("clinicCashback", AUTH + 5)
def _(W):
    cid = _wallet(W)
    t = W.tok("admin_a")
    W.call("get", f"/clinics/{cid}/cashback?date_from=2025-12-01&date_to=2026-11-30", token=t)
    W.call("get", f"/clinics/{cid}/cashback?date_from=2026-11-01&date_to=2026-11-30&time_zone=Asia/Sakhalin",
           token=t, label="a zone given")
# ------------------------------------------------------------------ payments (tests/*/test_payments_*.py own the rest)

def _paid_at_desk(W) -> dict:
    b = W.book(service_id=W.prepaid)
    return W.setup("post", f"/clinics/{W.cid}/payments/reception", {
        "booking_id": b["booking_id"], "method": "cash", "amount": {"amount": 1000, "currency": "RUB"}},
        token=W.tok("admin_a"), status=201)


@case("createPayment", AUTH + 3)  # the budget: one transaction and at most three reads
def _(W):
    b = W.book(service_id=W.prepaid)
    t = W.tok("patient")
    W.call("post", f"/bookings/{b['booking_id']}/payment", {}, token=t, status=201)
    W.call("post", f"/bookings/{b['booking_id']}/payment", {}, token=t, status=201, label="again: the same intent")


@case("getPayment", AUTH + 2)
def _(W):
    p = _paid_at_desk(W)
    W.call("get", f"/payments/{p['payment_id']}", token=W.tok("patient"))


@case("myPayments", AUTH + 1)
def _(W):
    _paid_at_desk(W)
    W.call("get", "/me/payments?limit=20", token=W.tok("patient"))


@case("clinicTransactions", AUTH + 3)
def _(W):
    _paid_at_desk(W)
    t = W.tok("admin_a")
    W.call("get", f"/clinics/{W.cid}/payments?date_from=2026-11-01&date_to=2026-12-31", token=t)
    W.call("get", f"/clinics/{W.cid}/payments?date_from=2026-11-01&date_to=2026-12-31&method=cash", token=t,
           label="by method")


@case("clinicDailyTotals", AUTH + 3)
def _(W):
    _paid_at_desk(W)
    W.call("get", f"/clinics/{W.cid}/payments/daily?date_from=2026-11-01&date_to=2026-12-31", token=W.tok("admin_a"))


@case("clinicTransactionsCsv", AUTH + 3)
def _(W):
    _paid_at_desk(W)
    W.call("get", f"/clinics/{W.cid}/payments/export?date_from=2026-11-01&date_to=2026-12-31", token=W.tok("admin_a"))


@case("sendPaymentLink", AUTH + 6)
def _(W):
    b = W.book(service_id=W.prepaid)
    W.call("post", f"/clinics/{W.cid}/payments/links", {"booking_id": b["booking_id"]}, token=W.tok("admin_a"),
           status=201)


@case("recordReceptionPayment", AUTH + 5)
def _(W):
    b = W.book(service_id=W.prepaid)
    W.call("post", f"/clinics/{W.cid}/payments/reception", {
        "booking_id": b["booking_id"], "method": "card_terminal", "amount": {"amount": 1000, "currency": "RUB"}},
        token=W.tok("admin_a"), status=201)


@case("refundPayment", AUTH + 5)
def _(W):
    p = _paid_at_desk(W)
    W.call("post", f"/clinics/{W.cid}/payments/{p['payment_id']}/refunds", {"amount": 100, "reason": "goodwill"},
           token=W.tok("admin_a"), headers={"Idempotency-Key": "budget-refund-1"}, status=202)
    W.call("post", f"/clinics/{W.cid}/payments/{p['payment_id']}/refunds", {"amount": 5000, "reason": "too much"},
           token=W.tok("admin_a"), status=422, label="more than paid")
@case("payOutRefund", AUTH + 4)  # the admin check (2), the payment and its refund in one BatchGetItem, one transaction
def _(W):
    from chalicelib import bootstrap
    from chalicelib.core.ids import new_id
    from chalicelib.payments import store

    p = _paid_at_desk(W)
    W.setup("post", f"/bookings/{p['booking_id']}/cancel", {}, token=W.tok("patient"))
    cancelled = {"event_id": new_id(), "kind": "booking.cancelled", "data": {"booking_id": p["booking_id"]}}
    bootstrap.payments().refund_by_policy(cancelled)  # the outbox's handler: owed at the reception
    [r] = store.get_refunds(p["payment_id"])
    assert r["status"] == "owed_at_reception"
    url = f"/clinics/{W.cid}/payments/{p['payment_id']}/refunds/{r['refund_id']}/payout"
    W.call("post", url, {"paid_out_by": "Мария"}, token=W.tok("admin_a"))
    W.call("post", url, {}, token=W.tok("admin_a"), label="again: answered as it is")


# ------------------------------------------------------------------ analytics

def _analytics_world(W) -> None:
    """A month of day counters for 20 doctors (each day item as the handlers leave it) and 150 patients'
    summaries: written once into the table."""
    if getattr(W, "analytics_ready", False):
        return
    from chalicelib.analytics import store as astore
    from chalicelib.core.ids import new_id

    doctors = [W.did] + [new_id() for _ in range(19)]
    items = []
    for day in range(1, 31):
        counters = {f"d|{d}|{k}": v for d in doctors for k, v in (("done|in_person", 6), ("done|video", 2), ("bmin", 300),
                                                                     ("smin", 480), ("fb_n", 3), ("fb_sum", 26),
                                                                     ("sum|RUB", 1800000), ("noshow", 1))}
        items.append({"PK": astore.day_pk(W.cid), "SK": astore.day_sk(f"2026-11-{day:02d}"), "type": "analytics_day",
                      **counters, "c|bk|app": 150})
    W.analytics_patients = [new_id() for _ in range(150)]
    items += [{"PK": astore.patient_pk(W.cid), "SK": astore.patient_sk(p), "type": "analytics_patient",
               "patient_id": p, "last|any": "2026-03-01", "visits": 2, "strikes": i % 3, "spend|RUB": 100000 * i}
              for i, p in enumerate(W.analytics_patients)]
    batch_put(items)
    W.analytics_ready = True


@case("clinicAnalytics", AUTH + 5)
def _(W):
    _analytics_world(W)
    t = W.tok("admin_a")
    # admin membership, clinic, the clinic's zone (its branches, once per process), the month's days, totals
    W.call("get", f"/clinics/{W.cid}/analytics?period=month&date=2026-11-15", token=t)
    W.call("get", f"/clinics/{W.cid}/analytics?period=month&date=2026-11-15&doctor_id={W.did}", token=t,
           label="one doctor (+ its membership)")


@case("clinicSegment", AUTH + 4)
def _(W):
    _analytics_world(W)
    W.call("get", f"/clinics/{W.cid}/analytics/segments?kind=lapsed&days=90", token=W.tok("admin_a"))


@case("clinicSegmentExport", AUTH + 4)
def _(W):
    _analytics_world(W)
    W.call("get", f"/clinics/{W.cid}/analytics/segments/export?kind=spend", token=W.tok("admin_a"))


@case("sendRecall", AUTH + 4)
def _(W):
    _analytics_world(W)
    W.call("post", f"/clinics/{W.cid}/analytics/recalls", {"patient_ids": W.analytics_patients[:50]},
           token=W.tok("admin_a"), status=202)


@case("myAnalytics", AUTH + 4)
def _(W):
    _analytics_world(W)
    W.call("get", f"/me/analytics?clinic_id={W.cid}&period=month&date=2026-11-15", token=W.tok("doctor"))


# ------------------------------------------------------------------ the tests

def test_every_operation_in_the_spec_has_a_budget_and_a_case():
    spec = _spec_operations()
    assert spec - set(BUDGETS) == set(), "operations in openapi.yaml without a DynamoDB call budget"
    assert set(BUDGETS) - spec == set(), "budgets for operations openapi.yaml no longer has"
    assert set(CASES) == set(BUDGETS)


def _param(op: str):
    marks = [pytest.mark.xfail(strict=True, raises=BudgetExceeded, reason=XFAIL[op])] if op in XFAIL else []
    return pytest.param(op, marks=marks, id=op)


@pytest.mark.parametrize("op", [_param(op) for op in BUDGETS])
def test_operation_stays_within_its_dynamodb_call_budget(W, op):
    W.measured = []
    CASES[op](W)
    assert W.measured, f"{op}: the case measured no request"
    OBSERVED[op] = list(W.measured)
    assert all("Scan" not in calls for _, _, calls in W.measured), (op, W.measured)
    over = [(label, n, calls) for label, n, calls in W.measured if n > BUDGETS[op]]
    if over:
        raise BudgetExceeded(f"{op}: budget {BUDGETS[op]} DynamoDB calls, made "
                             + "; ".join(f"{label}: {n} {calls}" for label, n, calls in over))

