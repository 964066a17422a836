"""Texts that resist phishing: every SMS names the app, a code SMS ends with the origin-bound line
``@<domain> #<code>`` (WebOTP, SMS Retriever, iOS autofill); a phone change tells the old number and
needs a fresh second factor, however young the session."""
from __future__ import annotations

import re

from chalicelib.core.settings import reset_settings
from tests.conftest import PASSWORD, body, jpost, log_in, sign_up, signup_payload, step_up

PHONE = "+79162220033"
NEW_PHONE = "+79162220034"
ORIGIN_LINE = re.compile(r"^@clinic\.example #(\d{6})$")


def every_kind_of_sms(client, outbox, fixed_clock, drain):
    """A journey that makes each account SMS go out once; returns them in order."""
    tokens = sign_up(client, outbox, PHONE)                      # signup code
    jpost(client, "/auth/signup", signup_payload(PHONE))         # signup_exists notice (after the cooldown)
    fixed_clock.advance(seconds=61)
    jpost(client, "/auth/signup", signup_payload(PHONE))
    fixed_clock.advance(seconds=61)
    log_in(client, outbox, PHONE)                                # login code
    step_up(client, outbox, fixed_clock, tokens["access_token"], PHONE)  # step-up code
    jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=tokens["access_token"], method="put")  # new number
    drain()                                                      # the old number is told
    fixed_clock.advance(seconds=61)
    jpost(client, "/auth/password-reset", {"phone": PHONE})       # reset code
    return outbox.all()


def test_every_sms_names_the_app_and_every_code_sms_ends_with_the_origin_bound_line(client, outbox, fixed_clock,
                                                                                     drain):
    sent = every_kind_of_sms(client, outbox, fixed_clock, drain)
    assert len(sent) >= 7
    codes = 0
    for _phone, text in sent:
        assert text.startswith("Clinic: "), text
        last = text.splitlines()[-1]
        found = re.findall(r"\b(\d{6})\b", text)
        if found:
            codes += 1
            match = ORIGIN_LINE.match(last)
            assert match and match.group(1) == found[0], text
            assert text.count(found[0]) == 2  # in the sentence and in the origin-bound line
        else:
            assert not last.startswith("@"), text
    assert codes == 5  # sign-up, sign-in, step-up, the new number's code, reset


def test_the_domain_and_name_come_from_settings(client, outbox, monkeypatch):
    monkeypatch.setenv("APP_DOMAIN", "app.zdorovye.example")
    monkeypatch.setenv("APP_NAME", "Zdorovye")
    reset_settings()
    try:
        jpost(client, "/auth/signup", signup_payload(PHONE, language="ru"))
        text = outbox.to(PHONE)[-1]
        code = outbox.last_code(PHONE)
        assert text.startswith("Zdorovye: код для регистрации")
        assert text.splitlines()[-1] == f"@app.zdorovye.example #{code}"
    finally:
        monkeypatch.delenv("APP_DOMAIN")
        monkeypatch.delenv("APP_NAME")
        reset_settings()


def test_a_phone_change_tells_the_old_number_how_to_stop_it(client, outbox, fixed_clock, drain):
    tokens = sign_up(client, outbox, PHONE)
    step_up(client, outbox, fixed_clock, tokens["access_token"], PHONE)
    before = len(outbox.to(PHONE))
    r = jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=tokens["access_token"], method="put")
    assert r.status_code == 202
    drain()
    told = outbox.to(PHONE)[before:]
    assert len(told) == 1
    assert "ending in 34" in told[0] and "end all other sessions" in told[0] and "change your" in told[0]
    assert NEW_PHONE not in told[0]
    drain()
    assert len(outbox.to(PHONE)) == before + 1  # told once, however often the consumers run


def test_a_session_younger_than_the_step_up_window_still_needs_a_fresh_code_to_move_the_phone(client, outbox,
                                                                                            fixed_clock):
    """Before: the first session of a new account could move the phone within five minutes of sign-up
    without any further code."""
    tokens = sign_up(client, outbox, PHONE)
    r = jpost(client, "/me/phone", {"phone": NEW_PHONE}, token=tokens["access_token"], method="put")
    assert r.status_code == 403 and body(r)["code"] == "step_up_required"
    assert outbox.to(NEW_PHONE) == []
    # the sign-up grant still lets a new account enrol its authenticator at once
    assert jpost(client, "/me/totp", {}, token=tokens["access_token"]).status_code == 201


def test_removing_the_second_factor_needs_a_fresh_code_even_right_after_sign_in(client, outbox, fixed_clock):
    from tests.conftest import enrol_totp

    tokens = sign_up(client, outbox, PHONE)
    secret, _ = enrol_totp(client, outbox, fixed_clock, tokens["access_token"], PHONE)
    import pyotp

    fixed_clock.advance(seconds=31)
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD})
    pair = body(jpost(client, "/auth/login/verify", {"challenge_id": body(r)["challenge_id"],
                                                     "code": pyotp.TOTP(secret).at(fixed_clock.now())}))
    r = jpost(client, "/me/totp", token=pair["access_token"], method="delete")
    assert r.status_code == 403 and body(r)["code"] == "step_up_required"
    step_up(client, outbox, fixed_clock, pair["access_token"], PHONE, totp_secret=secret)
    assert jpost(client, "/me/totp", token=pair["access_token"], method="delete").status_code == 204
