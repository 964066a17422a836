"""Limits that slow an attacker without stopping the owner (issue 9).

- Wrong second-factor codes count per account across challenges: free tries, then a delay that
  doubles, then at the ceiling the account needs a password reset; the owner is told by SMS.
- A stranger's wrong passwords, sign-ups and reset requests do not lock the owner out: the owner's
  known device keeps its own counter, and sign-in SMS have their own budget.
- One client guessing many phones meets an address limit, with the same answers for known and
  unknown numbers, and that limit does not wall off devices that signed in before.
Clients are told apart by address: the service is called directly with one address per client."""
from __future__ import annotations

import pyotp
import pytest

from chalicelib.bootstrap import identity
from chalicelib.core.errors import AppError
from chalicelib.identity import models as m
from tests.conftest import PASSWORD, body, enrol_totp, jpost, sign_up

PHONE = "+79163330044"
STRANGER = "198.51.100.66"
OWNER = "203.0.113.10"


def code_of(fn):
    try:
        fn()
        return "ok"
    except AppError as exc:
        return exc.code


def totp_user(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    secret, recovery = enrol_totp(client, outbox, fixed_clock, token, PHONE)
    return secret, recovery


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def login(phone=PHONE, password=PASSWORD, client=OWNER, device_token=None):
    extra = {"device_token": device_token} if device_token else {}
    return identity().login(m.LoginRequest(phone=phone, password=password, **extra), client)


def verify(challenge_id, code):
    return identity().verify_login(m.VerifyLoginRequest(challenge_id=challenge_id, code=code))


def attempt(fixed_clock, secret, right=False):
    """A sign-in with the right password and a TOTP code: (problem code or "ok", Retry-After or None)."""
    ch = login()
    code = pyotp.TOTP(secret).at(fixed_clock.now())
    try:
        verify(ch.challenge_id, code if right else wrong(code))
        return "ok", None
    except AppError as exc:
        return exc.code, exc.headers.get("Retry-After")


# ------------------------------------------------------------------ second factors per account

def test_thirty_wrong_codes_across_fresh_challenges_are_slowed_and_the_right_one_then_waits(client, outbox,
                                                                                            fixed_clock):
    """Before: each fresh challenge had 5 tries and wrong codes never counted against the account, so
    30 wrong codes followed by the right one signed in."""
    secret, _ = totp_user(client, outbox, fixed_clock)
    results = [attempt(fixed_clock, secret) for _ in range(30)]
    assert [r[0] for r in results[:6]] == ["invalid_code"] * 6  # five free, the sixth starts the delay
    assert {r for r in results[6:]} == {("second_factor_throttled", "30")}
    assert attempt(fixed_clock, secret, right=True) == ("second_factor_throttled", "30")
    fixed_clock.advance(seconds=30)
    assert attempt(fixed_clock, secret, right=True) == ("ok", None)
    # a right code starts the count again: five free wrong codes before any delay
    fixed_clock.advance(seconds=31)
    assert [attempt(fixed_clock, secret)[0] for _ in range(5)] == ["invalid_code"] * 5


def test_the_delay_doubles_and_a_hundred_failures_need_a_password_reset_and_the_owner_is_told(
        client, outbox, fixed_clock, drain):
    secret, _ = totp_user(client, outbox, fixed_clock)
    sms_before = len(outbox.to(PHONE))
    waits = []
    for n in range(1, 101):
        result, retry = attempt(fixed_clock, secret)
        assert result == "invalid_code", (n, result)
        if n > 5:  # the next try must wait: read the wait from the refusal, then let it pass
            refused, retry = attempt(fixed_clock, secret, right=True)
            if n < 100:
                assert refused == "second_factor_throttled", (n, refused)
                waits.append(int(retry))
                fixed_clock.advance(seconds=int(retry))
    assert waits[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600] and set(waits[8:]) == {3600}
    # the hundredth consecutive failure locks: the right code, even a day later, is refused
    fixed_clock.advance(days=1)
    assert attempt(fixed_clock, secret, right=True)[0] == "second_factor_locked"
    drain()
    told = outbox.to(PHONE)[sms_before:]
    assert len(told) == 2, told
    assert told[0].startswith("Clinic: several wrong sign-in codes") and "reset it now" in told[0]
    assert told[1].startswith("Clinic: sign-in to your account is stopped")
    # recovery: a password reset by SMS, then the authenticator works again
    ch = body(jpost(client, "/auth/password-reset", {"phone": PHONE}))["challenge_id"]
    r = jpost(client, "/auth/password-reset/confirm", {"challenge_id": ch, "code": outbox.last_code(PHONE),
                                                       "new_password": "a fresh start at last"})
    assert r.status_code == 204
    ch = login(password="a fresh start at last")
    fixed_clock.advance(seconds=31)
    assert code_of(lambda: verify(ch.challenge_id, pyotp.TOTP(secret).at(fixed_clock.now()))) == "ok"


def test_wrong_step_up_codes_count_against_the_same_account_budget(client, outbox, fixed_clock):
    secret, _ = totp_user(client, outbox, fixed_clock)
    for _ in range(6):
        assert attempt(fixed_clock, secret)[0] == "invalid_code"
    fixed_clock.advance(seconds=30)  # the delay after the sixth, then a session of the account to step up in
    ch = login()
    pair = verify(ch.challenge_id, pyotp.TOTP(secret).at(fixed_clock.now()))
    token = pair.access_token
    for _ in range(6):  # after the right code the count is 0 again: 5 free, the 6th starts the delay
        st = body(jpost(client, "/me/step-up", {}, token=token))
        r = jpost(client, "/me/step-up/verify", {"challenge_id": st["challenge_id"], "code": "000000"}, token=token)
        assert body(r)["code"] == "invalid_code"
    st = body(jpost(client, "/me/step-up", {}, token=token))
    r = jpost(client, "/me/step-up/verify", {"challenge_id": st["challenge_id"],
                                             "code": pyotp.TOTP(secret).at(fixed_clock.now())}, token=token)
    assert r.status_code == 429 and body(r)["code"] == "second_factor_throttled" and r.headers["Retry-After"] == "30"
    assert attempt(fixed_clock, secret, right=True)[0] == "second_factor_throttled"  # the same budget


# ------------------------------------------------------------------ a stranger cannot lock the owner out

def owner_with_device(client, outbox, fixed_clock):
    sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    ch = login()
    return verify(ch.challenge_id, outbox.last_code(PHONE)).device_token


def test_a_strangers_wrong_passwords_never_block_the_owners_known_device(client, outbox, fixed_clock):
    """Before: ten wrong passwords from anyone blocked even the right password, everywhere, for 15 minutes."""
    device = owner_with_device(client, outbox, fixed_clock)
    assert device
    fixed_clock.advance(seconds=61)
    # one stranger: ten tries, then that stranger (and only that stranger) waits
    tries = [code_of(lambda: login(password="guess", client=STRANGER)) for _ in range(11)]
    assert tries == ["invalid_credentials"] * 10 + ["login_throttled"]
    assert code_of(lambda: login(client=OWNER)) == "ok"  # the owner's own address is still fine
    # strangers on many addresses fill the account's counter for unseen clients (40 a quarter hour)...
    for k in range(1, 5):
        for _ in range(10):
            code_of(lambda: login(password="guess", client=f"198.51.100.{k}"))
    fixed_clock.advance(seconds=61)
    assert code_of(lambda: login(client="192.0.2.77")) == "login_throttled"  # a new device waits
    # ...and the owner's device that signed in before still signs in at once, from anywhere
    assert code_of(lambda: login(client="192.0.2.77", device_token=device)) == "ok"


def test_a_device_token_counts_only_for_its_own_account_and_only_unforged(client, outbox, fixed_clock):
    device = owner_with_device(client, outbox, fixed_clock)
    other = "+79163330045"
    sign_up(client, outbox, other)
    forged = device[:-1] + ("0" if device[-1] != "0" else "1")
    for token in (forged, device):  # a forged token, or this account's token on another account
        phone = other if token == device else PHONE
        for _ in range(10):
            code_of(lambda: login(phone=phone, password="guess", client=STRANGER, device_token=token))
        assert code_of(lambda: login(phone=phone, password="guess", client=STRANGER, device_token=token)) \
            == "login_throttled"


def test_the_known_device_has_its_own_limit_which_only_it_can_fill(client, outbox, fixed_clock):
    device = owner_with_device(client, outbox, fixed_clock)
    fixed_clock.advance(seconds=61)
    tries = [code_of(lambda: login(password="typo", client=OWNER, device_token=device)) for _ in range(11)]
    assert tries == ["invalid_credentials"] * 10 + ["login_throttled"]
    assert code_of(lambda: login(client=OWNER)) == "ok"  # the same person without the token: other counters


def test_sign_ups_on_the_owners_number_do_not_spend_its_sign_in_sms(client, outbox, fixed_clock):
    """Before: five sign-up attempts an hour on someone's number blocked their SMS sign-in for an hour."""
    sign_up(client, outbox, PHONE)
    svc = identity()
    for _ in range(4):  # with the owner's own sign-up, the five sign-up SMS an hour for this number
        fixed_clock.advance(seconds=61)
        svc.sign_up(m.SignUpRequest(**{**_payload(), "phone": PHONE}), STRANGER)
    fixed_clock.advance(seconds=61)
    assert code_of(lambda: svc.sign_up(m.SignUpRequest(**{**_payload(), "phone": PHONE}), STRANGER)) == "sms_limit"
    sent = len(outbox.to(PHONE))
    assert code_of(lambda: login()) == "ok"
    assert len(outbox.to(PHONE)) == sent + 1 and "sign-in code" in outbox.to(PHONE)[-1]


def test_reset_requests_by_a_stranger_do_not_spend_the_sign_in_sms(client, outbox, fixed_clock):
    sign_up(client, outbox, PHONE)
    svc = identity()
    for _ in range(6):
        fixed_clock.advance(seconds=61)
        code_of(lambda: svc.request_password_reset(m.PasswordResetRequest(phone=PHONE), STRANGER))
    assert code_of(lambda: svc.request_password_reset(m.PasswordResetRequest(phone=PHONE), STRANGER)) \
        in ("sms_limit", "resend_too_soon")
    fixed_clock.advance(seconds=61)
    assert code_of(lambda: login()) == "ok"


def _payload():
    from tests.conftest import signup_payload

    return signup_payload(PHONE)


# ------------------------------------------------------------------ one client, many phones

def test_one_address_guessing_many_phones_meets_a_limit_with_alike_answers(client, outbox, fixed_clock):
    known = [f"+7916333{i:04d}" for i in range(3)]
    for p in known:
        sign_up(client, outbox, p)
    device = None
    fixed_clock.advance(seconds=61)
    ch = login(phone=known[0], client="192.0.2.1")
    device = verify(ch.challenge_id, outbox.last_code(known[0])).device_token
    answers = []
    for i in range(100):  # the address limit: 100 wrong passwords a quarter hour, over any phones
        phone = known[i % 3] if i % 10 == 1 else f"+7916444{i:04d}"  # a few known ones among them
        answers.append(code_of(lambda: login(phone=phone, password=f"guess {i}", client=STRANGER)))
    assert answers == ["invalid_credentials"] * 100
    for phone in (known[1], "+79164449999"):  # known and unknown numbers: the same refusal
        assert code_of(lambda: login(phone=phone, password="guess", client=STRANGER)) == "login_throttled"
    # the address is a soft signal, not a wall: a device that signed in before passes, and the address's
    # count never spends the accounts' own counters
    fixed_clock.advance(seconds=61)
    assert code_of(lambda: login(phone=known[0], client=STRANGER, device_token=device)) == "ok"
    assert code_of(lambda: login(phone=known[2], client="192.0.2.2")) == "ok"


def test_known_and_unknown_numbers_answer_the_same_through_the_api(client, outbox):
    sign_up(client, outbox, PHONE)
    a = jpost(client, "/auth/login", {"phone": PHONE, "password": "wrong password"})
    b = jpost(client, "/auth/login", {"phone": "+79163339999", "password": "wrong password"})
    assert (a.status_code, body(a)) == (b.status_code, body(b))


@pytest.mark.parametrize("bad", ["not-a-token", "01JD6Q3D4R5T6V7W8X9Y0Z1A2B.1.abc"])
def test_a_malformed_device_token_is_a_422_naming_it(client, bad):
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD, "device_token": bad})
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "device_token"
