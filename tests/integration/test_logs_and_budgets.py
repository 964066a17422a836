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


def test_limit_journeys_log_no_password_code_token_device_token_or_phone(client, outbox, fixed_clock, logs, drain):
    """The journeys of issue 9: wrong codes past the free tries (the owner told by SMS), a device token
    used at sign-in, throttled passwords, a phone change that tells the old number, weak passwords and
    refused numbers. None of their secrets or numbers reach the logs."""
    from tests.conftest import enrol_totp, step_up

    phone, new_phone, landline = "+79168881122", "+79168881133", "+74952000000"
    tokens = body(jpost(client, "/auth/signup/verify", {
        "challenge_id": body(jpost(client, "/auth/signup", signup_payload(phone)))["challenge_id"],
        "code": outbox.last_code(phone)}))
    signup_code = outbox.last_code(phone)
    weak = jpost(client, "/auth/signup", signup_payload("+79168881144", password="Petrova1990!"))
    assert weak.status_code == 422
    assert jpost(client, "/auth/signup", signup_payload(landline)).status_code == 422
    secret, recovery = enrol_totp(client, outbox, fixed_clock, tokens["access_token"], phone)
    fixed_clock.advance(seconds=31)
    wrong_codes = []
    for _ in range(6):  # five free wrong codes, the sixth starts the delay and tells the owner
        ch = body(jpost(client, "/auth/login", {"phone": phone, "password": PASSWORD}))["challenge_id"]
        good = pyotp.TOTP(secret).at(fixed_clock.now())
        bad = "000000" if good != "000000" else "111111"
        wrong_codes.append(bad)
        assert body(jpost(client, "/auth/login/verify", {"challenge_id": ch, "code": bad}))["code"] == "invalid_code"
    fixed_clock.advance(seconds=31)
    ch = body(jpost(client, "/auth/login", {"phone": phone, "password": PASSWORD}))["challenge_id"]
    totp_code = pyotp.TOTP(secret).at(fixed_clock.now())
    pair = body(jpost(client, "/auth/login/verify", {"challenge_id": ch, "code": totp_code}))
    device = pair["device_token"]
    for _ in range(11):
        jpost(client, "/auth/login", {"phone": phone, "password": "a stranger's guess"})
    fixed_clock.advance(seconds=31)
    assert jpost(client, "/auth/login", {"phone": phone, "password": PASSWORD,
                                         "device_token": device}).status_code == 202
    step_up(client, outbox, fixed_clock, pair["access_token"], phone, totp_secret=secret)
    assert jpost(client, "/me/phone", {"phone": new_phone}, token=pair["access_token"], method="put").status_code == 202
    change_code = outbox.last_code(new_phone)
    drain()
    notices = [t for t in outbox.to(phone) if "wrong sign-in codes" in t or "moving it to the number" in t]
    assert len(notices) == 2

    text = logs.text()
    assert "mfa.failures" in text and "account.owner_told" in text and "login.throttled" in text
    secrets = [PASSWORD, "a stranger's guess", "Petrova1990!", signup_code, totp_code, change_code, secret, *recovery,
               *wrong_codes, device, device.split(".")[-1], pair["access_token"], pair["refresh_token"]]
    for s in secrets:
        assert s not in text, s
    for number in (phone, new_phone, landline, "+79168881144"):
        digits = re.sub(r"\D", "", number)
        assert number not in text and digits not in text and digits[1:] not in text
