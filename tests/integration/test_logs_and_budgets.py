"""Against DynamoDB Local: what the logs never contain, and how many DynamoDB
calls each step of the journey may make."""
import re

import pyotp

from tests.conftest import PASSWORD, body, jpost, signup_payload

PHONE = "+79168889900"

# DynamoDB calls per request, counted with a botocore before-call hook.
BUDGET = {
    "signup": 5,        # client counter, phone cooldown + counter (one conditional update each), phone lookup, challenge put
    "signup_verify": 2,  # attempt counter, one transaction (challenge, phone, user, session)
    "login": 5,         # phone, the phone's failure counters, address counter, user, one transaction
    "login_verify": 4,  # attempt counter, account's second-factor counter (returns the user), transaction, sessions
    "refresh": 2,       # session read, conditional rotation
    "me": 2,            # authorizer session check, user read
}


def test_journey_logs_hold_no_password_code_token_or_phone(client, outbox, fixed_clock, logs):
    r = jpost(client, "/auth/signup", signup_payload(PHONE))
    ch = body(r)["challenge_id"]
    signup_code = outbox.last_code(PHONE)
    jpost(client, "/auth/signup/verify", {"challenge_id": ch, "code": "000000" if signup_code != "000000" else "1"})
    tokens = body(jpost(client, "/auth/signup/verify", {"challenge_id": ch, "code": signup_code}))
    fixed_clock.advance(seconds=61)
    jpost(client, "/auth/login", {"phone": PHONE, "password": "a wrong password"})
    login_ch = body(jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}))["challenge_id"]
    login_code = outbox.last_code(PHONE)
    pair = body(jpost(client, "/auth/login/verify", {"challenge_id": login_ch, "code": login_code}))
    fresh = body(jpost(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]}))
    jpost(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]})  # reuse: logged as a warning
    # step-up and an authenticator app: the TOTP secret and recovery codes must not leak either
    fixed_clock.advance(seconds=61)
    st = body(jpost(client, "/me/step-up", {}, token=tokens["access_token"]))
    step_code = outbox.last_code(PHONE)
    jpost(client, "/me/step-up/verify", {"challenge_id": st["challenge_id"], "code": step_code},
          token=tokens["access_token"])
    enrol = body(jpost(client, "/me/totp", {}, token=tokens["access_token"]))
    codes = body(jpost(client, "/me/totp/confirm", {"code": pyotp.TOTP(enrol["secret"]).at(fixed_clock.now())},
                       token=tokens["access_token"]))["recovery_codes"]
    jpost(client, "/me", token=tokens["access_token"], method="get")
    jpost(client, "/auth/logout", token=tokens["access_token"])

    text = logs.text()
    assert "signup.completed" in text and "login.completed" in text and "session.refresh_reuse" in text
    secrets = [PASSWORD, "a wrong password", signup_code, login_code, step_code, enrol["secret"], *codes,
               tokens["access_token"], tokens["refresh_token"], pair["refresh_token"], fresh["refresh_token"],
               pair["access_token"]]
    for secret in secrets:
        assert secret not in text
    # the refresh secret part alone, and the phone in any spelling
    for token in (tokens["refresh_token"], pair["refresh_token"]):
        assert token.split(".")[1] not in text
    digits = re.sub(r"\D", "", PHONE)
    assert PHONE not in text and digits not in text and digits[1:] not in text


def test_each_step_stays_within_its_dynamodb_call_budget(client, outbox, fixed_clock, ddb_calls):
    used = {}

    def measure(name, fn):
        ddb_calls.reset()
        result = fn()
        used[name] = list(ddb_calls.calls)
        assert ddb_calls.count <= BUDGET[name], (name, ddb_calls.calls)
        return result

    ch = measure("signup", lambda: body(jpost(client, "/auth/signup", signup_payload(PHONE))))["challenge_id"]
    code = outbox.last_code(PHONE)
    tokens = measure("signup_verify", lambda: body(jpost(client, "/auth/signup/verify",
                                                         {"challenge_id": ch, "code": code})))
    fixed_clock.advance(seconds=61)
    ch = measure("login", lambda: body(jpost(client, "/auth/login",
                                             {"phone": PHONE, "password": PASSWORD})))["challenge_id"]
    code = outbox.last_code(PHONE)
    pair = measure("login_verify", lambda: body(jpost(client, "/auth/login/verify",
                                                      {"challenge_id": ch, "code": code})))
    measure("refresh", lambda: body(jpost(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]})))
    me = measure("me", lambda: body(jpost(client, "/me", token=tokens["access_token"], method="get")))
    assert me["phone"] == PHONE
    assert "Scan" not in {c for calls in used.values() for c in calls}
    assert used["signup_verify"].count("TransactWriteItems") == 1
