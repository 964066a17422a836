"""Step-up for sensitive changes, authenticator apps (TOTP) and recovery codes."""
import pyotp

from tests.conftest import PASSWORD, body, jpost, log_in, sign_up
from tests.conftest import enrol_totp as shared_enrol_totp
from tests.conftest import step_up as shared_step_up

PHONE = "+79166667788"
NEW_PHONE = "+79169990011"


def step_up(client, outbox, fixed_clock, token, phone=PHONE, totp_secret=None):
    return shared_step_up(client, outbox, fixed_clock, token, phone, totp_secret)


def test_password_change_needs_a_fresh_second_factor_used_once(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    token = tokens["access_token"]
    fixed_clock.advance(seconds=301)  # the sign-up code's freshness has lapsed
    r = jpost(client, "/me/password", {"new_password": "another long secret"}, token=token, method="put")
    assert r.status_code == 403 and body(r)["code"] == "step_up_required"

    step_up(client, outbox, fixed_clock, token)
    assert jpost(client, "/me/password", {"new_password": "another long secret"}, token=token,
                 method="put").status_code == 204
    # the step-up was spent
    r = jpost(client, "/me/password", {"new_password": "third long secret"}, token=token, method="put")
    assert r.status_code == 403
    fixed_clock.advance(seconds=61)
    assert jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}).status_code == 401
    fixed_clock.advance(seconds=61)
    log_in(client, outbox, PHONE, password="another long secret")


def test_step_up_lapses_after_five_minutes(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    step_up(client, outbox, fixed_clock, token)
    fixed_clock.advance(seconds=301)
    r = jpost(client, "/me/password", {"new_password": "another long secret"}, token=token, method="put")
    assert r.status_code == 403


def test_password_change_ends_other_sessions(client, outbox, fixed_clock):
    first = sign_up(client, outbox, PHONE, device="a")
    fixed_clock.advance(seconds=61)
    second = log_in(client, outbox, PHONE, device="b")
    step_up(client, outbox, fixed_clock, second["access_token"])
    jpost(client, "/me/password", {"new_password": "another long secret"}, token=second["access_token"], method="put")
    assert jpost(client, "/me", token=first["access_token"], method="get").status_code == 401
    assert jpost(client, "/me", token=second["access_token"], method="get").status_code == 200


def test_step_up_of_another_session_does_not_count(client, outbox, fixed_clock):
    first = sign_up(client, outbox, PHONE, device="a")
    fixed_clock.advance(seconds=61)
    second = log_in(client, outbox, PHONE, device="b")
    step_up(client, outbox, fixed_clock, first["access_token"])
    r = jpost(client, "/me/password", {"new_password": "a new long secret"}, token=second["access_token"],
              method="put")
    assert r.status_code == 403


def test_phone_change_needs_step_up_and_the_new_phones_code(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    fixed_clock.advance(seconds=301)
    r = jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=token, method="put")
    assert r.status_code == 403
    step_up(client, outbox, fixed_clock, token)
    r = jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=token, method="put")
    assert r.status_code == 202
    ch = body(r)["challenge_id"]
    r = jpost(client, "/me/phone/verify", {"challenge_id": ch, "code": outbox.last_code(NEW_PHONE)}, token=token)
    assert r.status_code == 200 and body(r)["phone"] == NEW_PHONE
    fixed_clock.advance(seconds=61)
    assert jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}).status_code == 401
    log_in(client, outbox, NEW_PHONE)


def test_phone_taken_by_another_account_is_a_conflict_and_changes_nothing(client, outbox, fixed_clock):
    sign_up(client, outbox, NEW_PHONE)
    token = sign_up(client, outbox, PHONE)["access_token"]
    step_up(client, outbox, fixed_clock, token)
    fixed_clock.advance(seconds=61)
    ch = body(jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=token, method="put"))["challenge_id"]
    r = jpost(client, "/me/phone/verify", {"challenge_id": ch, "code": outbox.last_code(NEW_PHONE)}, token=token)
    assert r.status_code == 409 and body(r)["code"] == "phone_taken"
    assert body(jpost(client, "/me", token=token, method="get"))["phone"] == PHONE


def enrol_totp(client, outbox, fixed_clock, token):
    return shared_enrol_totp(client, outbox, fixed_clock, token, PHONE)


def test_authenticator_app_replaces_sms_at_login(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    secret, recovery = enrol_totp(client, outbox, fixed_clock, token)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert body(jpost(client, "/me", token=token, method="get"))["second_factor"] == "totp"

    fixed_clock.advance(seconds=61)
    sms_before = len(outbox.to(PHONE))
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD})
    assert r.status_code == 202 and body(r)["second_factor"] == "totp"
    assert len(outbox.to(PHONE)) == sms_before  # no SMS for TOTP users
    code = pyotp.TOTP(secret).at(fixed_clock.now())
    r = jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"], "code": code})
    assert r.status_code == 200

    # The same TOTP code cannot be replayed on another challenge.
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD})
    r = jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"], "code": code})
    assert r.status_code == 400 and body(r)["code"] == "invalid_code"


def test_recovery_code_works_once(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    _, recovery = enrol_totp(client, outbox, fixed_clock, token)
    results = []
    for _ in range(2):
        fixed_clock.advance(seconds=61)
        ch = body(jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}))["challenge_id"]
        results.append(jpost(client, "/auth/login/verify", {"challenge_id": ch, "code": recovery[0]}).status_code)
    assert results == [200, 400]
    assert body(jpost(client, "/me", token=token, method="get"))["recovery_codes_left"] == 9


def test_removing_the_authenticator_needs_step_up_with_it(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    secret, _ = enrol_totp(client, outbox, fixed_clock, token)
    assert jpost(client, "/me/totp", token=token, method="delete").status_code == 403
    fixed_clock.advance(seconds=31)  # a new TOTP step
    step_up(client, outbox, fixed_clock, token, totp_secret=secret)
    assert jpost(client, "/me/totp", token=token, method="delete").status_code == 204
    assert body(jpost(client, "/me", token=token, method="get"))["second_factor"] == "sms"


def test_wrong_totp_during_enrolment_enables_nothing(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    step_up(client, outbox, fixed_clock, token)
    jpost(client, "/me/totp", {}, token=token)
    r = jpost(client, "/me/totp/confirm", {"code": "000000"}, token=token)
    assert r.status_code == 400
    assert body(jpost(client, "/me", token=token, method="get"))["second_factor"] == "sms"


def test_a_fresh_sign_up_counts_as_a_fresh_second_factor_once(client, outbox, fixed_clock):
    """Staff enrol their authenticator right after verifying the sign-up code, with no second SMS."""
    token = sign_up(client, outbox, PHONE)["access_token"]
    sent = len(outbox.to(PHONE))
    r = jpost(client, "/me/totp", {}, token=token)
    assert r.status_code == 201 and len(outbox.to(PHONE)) == sent
    r = jpost(client, "/me/password", {"new_password": "another long secret"}, token=token, method="put")
    assert r.status_code == 403  # the grant was spent on the enrolment
