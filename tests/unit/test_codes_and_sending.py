"""One-time codes and their sending limits, as a patient meets them."""
import hashlib

from chalicelib.core import aws
from tests.conftest import body, jpost, signup_payload

PHONE = "+79161112233"
OTHER = "+79162223344"


def start_signup(client, phone, **over):
    r = jpost(client, "/auth/signup", signup_payload(phone, **over))
    assert r.status_code == 202, r.body
    return body(r)


def verify(client, challenge_id, code):
    return jpost(client, "/auth/signup/verify", {"challenge_id": challenge_id, "code": code})


def all_items(table):
    # Test-only inspection of what was stored (the app itself never scans).
    return aws.client("dynamodb").scan(TableName=table)["Items"]


def test_code_is_six_digits_and_stored_only_as_keyed_hash(client, outbox, backend_env):
    ch = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    assert len(code) == 6 and code.isdigit()
    stored = repr(all_items(backend_env["TABLE_NAME"]))
    assert code not in stored
    assert hashlib.sha256(code.encode()).hexdigest() not in stored
    assert ch["second_factor"] == "sms"


def test_code_is_single_use(client, outbox):
    ch = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    assert verify(client, ch["challenge_id"], code).status_code == 201
    again = verify(client, ch["challenge_id"], code)
    assert again.status_code == 400 and body(again)["code"] == "challenge_closed"


def test_code_is_bound_to_its_challenge(client, outbox, fixed_clock):
    a = start_signup(client, PHONE)
    code_a = outbox.last_code(PHONE)
    b = start_signup(client, OTHER)
    code_b = outbox.last_code(OTHER)
    if code_a != code_b:
        r = verify(client, b["challenge_id"], code_a)
        assert r.status_code == 400 and body(r)["code"] == "invalid_code"
    assert verify(client, a["challenge_id"], code_a).status_code == 201


def test_code_expires_after_five_minutes(client, outbox, fixed_clock):
    ch = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    fixed_clock.advance(seconds=301)
    r = verify(client, ch["challenge_id"], code)
    assert r.status_code == 400 and body(r)["code"] == "code_expired"


def test_code_valid_just_before_five_minutes(client, outbox, fixed_clock):
    ch = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    fixed_clock.advance(seconds=299)
    assert verify(client, ch["challenge_id"], code).status_code == 201


def test_at_most_five_tries_per_challenge(client, outbox):
    ch = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    lefts = []
    for _ in range(5):
        r = verify(client, ch["challenge_id"], wrong)
        assert r.status_code == 400 and body(r)["code"] == "invalid_code"
        lefts.append(body(r)["attempts_left"])
    assert lefts == [4, 3, 2, 1, 0]
    r = verify(client, ch["challenge_id"], code)  # even the right code is refused now
    assert r.status_code == 400 and body(r)["code"] == "too_many_attempts"


def test_resend_has_a_sixty_second_cooldown_and_replaces_the_code(client, outbox, fixed_clock):
    ch = start_signup(client, PHONE)
    first = outbox.last_code(PHONE)
    r = jpost(client, f"/auth/challenges/{ch['challenge_id']}/resend", {})
    assert r.status_code == 429 and body(r)["code"] == "resend_too_soon"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    fixed_clock.advance(seconds=61)
    r = jpost(client, f"/auth/challenges/{ch['challenge_id']}/resend", {})
    assert r.status_code == 202, r.body
    second = outbox.last_code(PHONE)
    if first != second:
        assert verify(client, ch["challenge_id"], first).status_code == 400
    assert verify(client, ch["challenge_id"], second).status_code == 201


def test_at_most_five_sms_per_phone_per_hour(client, outbox, fixed_clock):
    ch = start_signup(client, PHONE)
    for _ in range(4):
        fixed_clock.advance(seconds=61)
        assert jpost(client, f"/auth/challenges/{ch['challenge_id']}/resend", {}).status_code == 202
    assert len(outbox.to(PHONE)) == 5
    fixed_clock.advance(seconds=61)
    r = jpost(client, f"/auth/challenges/{ch['challenge_id']}/resend", {})
    assert r.status_code == 429 and body(r)["code"] == "sms_limit"
    retry = int(r.headers["Retry-After"])
    assert 3600 - 5 * 61 <= retry <= 3600
    # A fresh sign-up for the same phone is held by the same limit.
    r = jpost(client, "/auth/signup", signup_payload(PHONE))
    assert r.status_code == 429
    assert len(outbox.to(PHONE)) == 5
    fixed_clock.advance(seconds=retry + 1)
    assert jpost(client, f"/auth/challenges/{ch['challenge_id']}/resend", {}).status_code == 202


def test_per_client_limit_stops_sms_pumping_across_many_numbers(client, outbox):
    sent = 0
    for i in range(25):
        r = jpost(client, "/auth/signup", signup_payload(f"+7916555{i:04d}"))
        if r.status_code == 429:
            assert body(r)["code"] == "client_sms_limit" and int(r.headers["Retry-After"]) > 0
            break
        assert r.status_code == 202
        sent += 1
    assert sent == 20
    assert len(outbox.all()) == 20


def test_unverified_sign_up_can_be_retried_and_never_blocks_the_phone(client, outbox, fixed_clock):
    first = start_signup(client, PHONE, first_name="Typo")
    stale = outbox.last_code(PHONE)
    fixed_clock.advance(seconds=400)  # first code lapsed unused
    second = start_signup(client, PHONE)
    code = outbox.last_code(PHONE)
    assert verify(client, first["challenge_id"], stale).status_code == 400
    r = verify(client, second["challenge_id"], code)
    assert r.status_code == 201
    me = body(jpost(client, "/me", token=body(r)["access_token"], method="get"))
    assert me["first_name"] == "Анна"


def test_the_twenty_first_sign_up_from_one_address_in_the_hour_is_refused_until_the_hour_ends(client, outbox,
                                                                                                fixed_clock):
    # 20 sign-ups spread over the hour from one address, each to its own number: all go through.
    for i in range(20):
        r = jpost(client, "/auth/signup", signup_payload(f"+7916444{i:04d}"))
        assert r.status_code == 202, (i, r.body)
        fixed_clock.advance(seconds=170)  # 20 x 170 s = 56 min 40 s
    r = jpost(client, "/auth/signup", signup_payload("+79164449999"))
    assert r.status_code == 429 and body(r)["code"] == "client_sms_limit"
    retry = int(r.headers["Retry-After"])
    assert retry == 3600 - 20 * 170  # the counter of this hour ends at 07:00
    assert len(outbox.all()) == 20
    fixed_clock.advance(seconds=retry - 1)
    assert jpost(client, "/auth/signup", signup_payload("+79164449999")).status_code == 429
    fixed_clock.advance(seconds=1)
    r = jpost(client, "/auth/signup", signup_payload("+79164449999"))
    assert r.status_code == 202, r.body
    assert len(outbox.all()) == 21
