"""Passwords, account throttling and account enumeration."""
import json

import pytest

from chalicelib.core import aws
from chalicelib.identity import service as identity_service
from tests.conftest import PASSWORD, body, jpost, log_in, sign_up, signup_payload

PHONE = "+79163334455"
UNKNOWN = "+79167778899"


def test_password_is_stored_as_argon2id(client, outbox, backend_env):
    sign_up(client, outbox, PHONE)
    items = aws.client("dynamodb").scan(TableName=backend_env["TABLE_NAME"])["Items"]
    users = [i for i in items if i["type"]["S"] == "user"]
    assert len(users) == 1
    assert users[0]["password_hash"]["S"].startswith("$argon2id$")
    assert PASSWORD not in json.dumps(items)


@pytest.mark.parametrize("password", ["zq7!vbnp", "пароль-из-слов", "a7" * 64])
def test_any_uncommon_password_of_eight_characters_or_more_is_accepted(client, password):
    # "aaaaaaaa" and "12345678" were accepted here before the blocklist: now they are refused
    # (tests/unit/test_identity_phones_and_passwords.py)
    r = jpost(client, "/auth/signup", signup_payload("+79160000001", password=password))
    assert r.status_code == 202, r.body


def test_password_shorter_than_eight_is_rejected_naming_the_field(client, outbox):
    r = jpost(client, "/auth/signup", signup_payload(PHONE, password="short7!"))
    assert r.status_code == 422
    problem = body(r)
    assert r.headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == ["password"]
    assert outbox.all() == []  # nothing sent, nothing stored


def test_wrong_password_and_unknown_phone_answer_the_same(client, outbox, monkeypatch):
    sign_up(client, outbox, PHONE)
    verified = []
    real = identity_service.password_matches
    monkeypatch.setattr(identity_service, "password_matches",
                        lambda stored, presented: verified.append(stored is not None) or real(stored, presented))
    a = jpost(client, "/auth/login", {"phone": PHONE, "password": "wrong password"})
    b = jpost(client, "/auth/login", {"phone": UNKNOWN, "password": "wrong password"})
    assert a.status_code == b.status_code == 401
    assert body(a) == body(b)
    assert verified == [True, False]  # both paths pay for one argon2 verification


def test_sign_up_for_an_existing_phone_answers_like_a_new_one(client, outbox, fixed_clock):
    sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    existing = jpost(client, "/auth/signup", signup_payload(PHONE))
    fresh = jpost(client, "/auth/signup", signup_payload(UNKNOWN))
    assert existing.status_code == fresh.status_code == 202
    assert set(body(existing)) == set(body(fresh))
    # The owner is told, without a code; no code can complete the duplicate.
    notice = outbox.to(PHONE)[-1]
    assert "sign in" in notice and not any(ch.isdigit() for ch in notice)
    for guess in ("000000", "123456"):
        r = jpost(client, "/auth/signup/verify", {"challenge_id": body(existing)["challenge_id"], "code": guess})
        assert r.status_code == 400 and body(r)["code"] == "invalid_code"


def test_password_reset_request_answers_alike_for_known_and_unknown_phones(client, outbox, fixed_clock):
    sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    known = jpost(client, "/auth/password-reset", {"phone": PHONE})
    unknown = jpost(client, "/auth/password-reset", {"phone": UNKNOWN})
    assert known.status_code == unknown.status_code == 202
    assert set(body(known)) == set(body(unknown))
    assert outbox.to(UNKNOWN) == []


def test_password_reset_sets_a_new_password_and_ends_sessions(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    ch = body(jpost(client, "/auth/password-reset", {"phone": PHONE}))["challenge_id"]
    r = jpost(client, "/auth/password-reset/confirm",
              {"challenge_id": ch, "code": outbox.last_code(PHONE), "new_password": "a brand new secret"})
    assert r.status_code == 204, r.body
    assert jpost(client, "/me", token=tokens["access_token"], method="get").status_code == 401
    fixed_clock.advance(seconds=61)
    assert jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}).status_code == 401
    fixed_clock.advance(seconds=61)
    log_in(client, outbox, PHONE, password="a brand new secret")


def test_account_is_throttled_after_repeated_failures_and_the_event_is_logged(client, outbox, fixed_clock, logs):
    sign_up(client, outbox, PHONE)
    for _ in range(10):
        r = jpost(client, "/auth/login", {"phone": PHONE, "password": "not the password"})
        assert r.status_code == 401
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD})
    assert r.status_code == 429 and body(r)["code"] == "login_throttled"
    assert int(r.headers["Retry-After"]) > 0
    assert "login.throttled" in [e.get("event") for e in logs.events()]
    fixed_clock.advance(seconds=int(r.headers["Retry-After"]) + 1)
    log_in(client, outbox, PHONE)


def test_throttling_caps_failures_at_forty_an_hour_and_the_count_starts_again_each_quarter(client, outbox,
                                                                                            fixed_clock):
    sign_up(client, outbox, PHONE)  # at 06:00, the start of a clock hour
    fixed_clock.advance(seconds=15 * 60 - (fixed_clock_epoch(fixed_clock) % (15 * 60)))  # 06:15 sharp
    per_hour: list[int] = []
    for hour in range(2):  # a guess every 30 seconds for two hours: 240 guesses
        failures = 0
        for k in range(120):
            r = jpost(client, "/auth/login", {"phone": PHONE, "password": "guess"})
            in_quarter = (k * 30) % 900
            if in_quarter < 10 * 30:  # the first ten guesses of each quarter hour are counted and refused
                assert r.status_code == 401, (hour, k, r.body)
                failures += 1
            else:  # the rest wait for the quarter to end, and are told exactly how long
                assert r.status_code == 429 and body(r)["code"] == "login_throttled", (hour, k)
                assert int(r.headers["Retry-After"]) == 900 - in_quarter
            fixed_clock.advance(seconds=30)
        per_hour.append(failures)
    assert per_hour == [40, 40]
    # Throttled at 08:14:30; at 08:15 the count starts again and the owner signs in.
    log_in(client, outbox, PHONE)


def fixed_clock_epoch(fixed_clock) -> int:
    return int(fixed_clock.now().timestamp())


def test_unknown_phones_are_throttled_too_so_throttling_reveals_nothing(client):
    codes = [jpost(client, "/auth/login", {"phone": UNKNOWN, "password": "guess"}).status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]


def test_password_reset_succeeds_when_the_profile_is_edited_at_the_same_moment(client, outbox, fixed_clock,
                                                                              monkeypatch):
    """The reset's transaction names its items: a profile edit racing it is the user item's
    version, not the code, so the reset is tried again with the fresh profile instead of
    answering 'challenge_closed' for a code that was right and never used."""
    tokens = sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    ch = body(jpost(client, "/auth/password-reset", {"phone": PHONE}))["challenge_id"]
    real = identity_service.hash_password
    raced = []

    def hash_while_the_profile_changes(password):
        if not raced:  # another device saves the profile while the new hash is computed
            raced.append(jpost(client, "/me", {"language": "ru"}, token=tokens["access_token"], method="patch"))
        return real(password)

    monkeypatch.setattr(identity_service, "hash_password", hash_while_the_profile_changes)
    r = jpost(client, "/auth/password-reset/confirm",
              {"challenge_id": ch, "code": outbox.last_code(PHONE), "new_password": "a brand new secret"})
    assert raced and raced[0].status_code == 200, raced
    assert r.status_code == 204, r.body
    fixed_clock.advance(seconds=61)
    log_in(client, outbox, PHONE, password="a brand new secret")
