"""Access tokens, refresh rotation, session lifetimes, logout and the session list."""
import base64
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import body, jpost, log_in, sign_up

PHONE = "+79164445566"


def get_me(client, token):
    return jpost(client, "/me", token=token, method="get")


def test_access_token_is_es256_with_kid_and_lasts_fifteen_minutes(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "ES256" and header["kid"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900 and claims["role"] == "patient"
    fixed_clock.advance(seconds=899)
    assert get_me(client, tokens["access_token"]).status_code == 200
    fixed_clock.advance(seconds=2)
    r = get_me(client, tokens["access_token"])
    assert r.status_code == 401 and body(r)["code"] == "token_expired"
    assert r.headers["Content-Type"] == "application/problem+json"


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "platform_admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{sig}"


def test_tampered_foreign_and_unsigned_tokens_are_refused(client, outbox):
    tokens = sign_up(client, outbox, PHONE)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    foreign = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    for bad in (_tamper(tokens["access_token"]), foreign, unsigned, "garbage", tokens["refresh_token"]):
        r = get_me(client, bad)
        assert r.status_code == 401 and body(r)["code"] == "token_invalid", bad


def test_missing_authorization_header_is_401(client):
    r = client.http.get("/me")
    assert r.status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_whole_session(client, outbox):
    tokens = sign_up(client, outbox, PHONE)
    r = jpost(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    second = body(r)
    assert second["refresh_token"] != tokens["refresh_token"]
    assert get_me(client, second["access_token"]).status_code == 200
    # The old refresh token is replayed (stolen copy): the family dies.
    r = jpost(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and body(r)["code"] == "refresh_invalid"
    assert jpost(client, "/auth/refresh", {"refresh_token": second["refresh_token"]}).status_code == 401
    r = get_me(client, second["access_token"])
    assert r.status_code == 401 and body(r)["code"] == "session_revoked"


def test_a_made_up_refresh_token_revokes_nothing(client, outbox):
    tokens = sign_up(client, outbox, PHONE)
    sid = tokens["session_id"]
    assert jpost(client, "/auth/refresh", {"refresh_token": f"{sid}.not-the-secret"}).status_code == 401
    assert jpost(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code == 200


def test_refresh_has_an_absolute_lifetime_of_thirty_days(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    refresh = tokens["refresh_token"]
    for _ in range(2):  # active use every 13 days keeps it alive...
        fixed_clock.advance(days=13)
        r = jpost(client, "/auth/refresh", {"refresh_token": refresh})
        assert r.status_code == 200
        refresh = body(r)["refresh_token"]
    fixed_clock.advance(days=4, seconds=1)  # ...but not past 30 days from login
    r = jpost(client, "/auth/refresh", {"refresh_token": refresh})
    assert r.status_code == 401 and body(r)["code"] == "refresh_invalid"


def test_an_idle_session_ends_after_fourteen_days(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    fixed_clock.advance(days=14, seconds=1)
    assert jpost(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_logout_revokes_access_and_refresh(client, outbox):
    tokens = sign_up(client, outbox, PHONE)
    assert jpost(client, "/auth/logout", token=tokens["access_token"]).status_code == 204
    assert get_me(client, tokens["access_token"]).status_code == 401
    assert jpost(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_user_lists_sessions_one_per_device_and_revokes_another(client, outbox, fixed_clock):
    phone_app = sign_up(client, outbox, PHONE, device="phone-1")
    fixed_clock.advance(seconds=61)
    tablet = log_in(client, outbox, PHONE, device="tablet-1")
    fixed_clock.advance(seconds=61)
    phone_again = log_in(client, outbox, PHONE, device="phone-1")  # same device: replaces its old session
    sessions = body(get_me_sessions(client, tablet["access_token"]))["items"]
    assert sorted(s["session_id"] for s in sessions) == sorted([tablet["session_id"], phone_again["session_id"]])
    assert [s["current"] for s in sessions if s["session_id"] == tablet["session_id"]] == [True]
    assert get_me(client, phone_app["access_token"]).status_code == 401

    r = jpost(client, f"/me/sessions/{phone_again['session_id']}", token=tablet["access_token"], method="delete")
    assert r.status_code == 204
    assert get_me(client, phone_again["access_token"]).status_code == 401
    assert get_me(client, tablet["access_token"]).status_code == 200


def test_another_users_session_cannot_be_revoked(client, outbox, fixed_clock):
    mine = sign_up(client, outbox, PHONE)
    theirs = sign_up(client, outbox, "+79165556677")
    r = jpost(client, f"/me/sessions/{theirs['session_id']}", token=mine["access_token"], method="delete")
    assert r.status_code == 404
    assert get_me(client, theirs["access_token"]).status_code == 200
    r = jpost(client, "/me/sessions/not-a-session", token=mine["access_token"], method="delete")
    assert r.status_code == 404


def get_me_sessions(client, token):
    return jpost(client, "/me/sessions", token=token, method="get")


# ------------------------------------------------------------------ hundreds of sessions

def _plant_sessions(user_id: str, n: int, fixed_clock) -> list[tuple[dict, str]]:
    """``n`` live sessions of one user written straight through the store (25 per BatchWriteItem),
    oldest first; returns (session, refresh token) pairs."""
    from chalicelib.bootstrap import identity
    from chalicelib.core import db
    from chalicelib.identity import store

    svc = identity()
    user = store.get_user(user_id)
    now = fixed_clock_epoch(fixed_clock)
    planted = [svc._new_session(user, None, now, "sms") for _ in range(n)]
    planted.sort(key=lambda pair: pair[0]["session_id"])
    for at in range(0, n, 25):
        db.ddb().batch_write_item(RequestItems={db.table_name(): [
            {"PutRequest": {"Item": db.to_item(store.session_item(s))}} for s, _ in planted[at:at + 25]]})
    return planted


def _reset_password(client, outbox, phone, new_password="a brand new secret", ddb_calls=None):
    ch = body(jpost(client, "/auth/password-reset", {"phone": phone}))["challenge_id"]
    if ddb_calls is not None:
        ddb_calls.reset()
    r = jpost(client, "/auth/password-reset/confirm",
              {"challenge_id": ch, "code": outbox.last_code(phone), "new_password": new_password})
    assert r.status_code == 204, r.body
    return list(ddb_calls.calls) if ddb_calls is not None else None


class ItemsRead:
    """How many items each DynamoDB Query returned (an after-call hook)."""

    def __init__(self):
        self.per_query: list[int] = []

    def __call__(self, model=None, parsed=None, **_):
        if model.name == "Query":
            self.per_query.append(len((parsed or {}).get("Items", [])))


def test_password_reset_revokes_all_three_hundred_sessions_in_a_bounded_number_of_calls(
        client, outbox, fixed_clock, ddb_calls):
    from chalicelib.bootstrap import identity

    first = sign_up(client, outbox, PHONE)
    uid = body(get_me(client, first["access_token"]))["user_id"]
    planted = _plant_sessions(uid, 299, fixed_clock)
    attacker, attacker_refresh = planted[-1]  # the newest session: past any first page of 100
    attacker_access = identity()._token_pair(attacker, attacker_refresh, fixed_clock_epoch(fixed_clock)).access_token
    assert get_me(client, attacker_access).status_code == 200

    fixed_clock.advance(seconds=61)
    calls = _reset_password(client, outbox, PHONE, ddb_calls=ddb_calls)

    r = get_me(client, attacker_access)
    assert r.status_code == 401 and body(r)["code"] == "session_revoked"
    r = jpost(client, "/auth/refresh", {"refresh_token": attacker_refresh})
    assert r.status_code == 401 and body(r)["code"] == "refresh_invalid"
    assert get_me(client, first["access_token"]).status_code == 401
    for s, refresh in planted[:3] + planted[98:102]:
        assert jpost(client, "/auth/refresh", {"refresh_token": refresh}).status_code == 401
    # Budget: spend a try (1), read the user (1), the password transaction (1), the user's live
    # sessions (1 query page), 300 revocations in transactions of at most 100 (3): 7 calls, not 300+.
    assert calls.count("TransactWriteItems") == 4, calls
    assert calls.count("UpdateItem") == 1, calls
    assert len(calls) == 7, calls


def fixed_clock_epoch(fixed_clock) -> int:
    return int(fixed_clock.now().timestamp())


def test_revoked_sessions_leave_the_index_so_lists_and_revoke_all_read_only_live_ones(
        client, outbox, fixed_clock, ddb_calls):
    from chalicelib.core import aws

    first = sign_up(client, outbox, PHONE)
    uid = body(get_me(client, first["access_token"]))["user_id"]
    _plant_sessions(uid, 299, fixed_clock)
    fixed_clock.advance(seconds=61)
    _reset_password(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    fresh = log_in(client, outbox, PHONE, password="a brand new secret", device="phone-2")

    read = ItemsRead()
    aws.add_hook("after-call.dynamodb", read)
    try:
        ddb_calls.reset()
        r = get_me_sessions(client, fresh["access_token"])
        assert r.status_code == 200
        assert [s["session_id"] for s in body(r)["items"]] == [fresh["session_id"]]
        assert read.per_query == [1]  # one live session read, not 301
        assert ddb_calls.count == 2  # the authorizer's session check and one query

        # A second revoke-all (a password change) reads only the live session too.
        fixed_clock.advance(seconds=61)
        step_up_ch = jpost(client, "/me/step-up", {}, token=fresh["access_token"])
        assert step_up_ch.status_code == 202, step_up_ch.body
        r = jpost(client, "/me/step-up/verify", {"challenge_id": body(step_up_ch)["challenge_id"],
                                                 "code": outbox.last_code(PHONE)}, token=fresh["access_token"])
        assert r.status_code == 200, r.body
        read.per_query.clear()
        ddb_calls.reset()
        r = jpost(client, "/me/password", {"new_password": "another new secret"}, token=fresh["access_token"],
                  method="put")
        assert r.status_code == 204, r.body
        assert read.per_query == [1]
        assert "TransactWriteItems" not in ddb_calls.calls  # nothing else was live: nothing to revoke
    finally:
        aws.remove_hook("after-call.dynamodb", read)


def test_a_role_change_reaches_every_session_even_past_the_first_hundred(client, outbox, fixed_clock, ddb_calls):
    from chalicelib.bootstrap import identity

    first = sign_up(client, outbox, PHONE)
    uid = body(get_me(client, first["access_token"]))["user_id"]
    planted = _plant_sessions(uid, 149, fixed_clock)
    newest, refresh = planted[-1]
    token = identity()._token_pair(newest, refresh, fixed_clock_epoch(fixed_clock)).access_token
    ddb_calls.reset()
    identity().set_role(PHONE, "doctor")
    # the user's phone and profile (2), the profile update (1), one query page, 150 sessions in 2 transactions
    assert ddb_calls.calls.count("TransactWriteItems") == 2 and ddb_calls.count == 6, ddb_calls.calls
    for access in (token, first["access_token"]):
        _, session = identity().authorize(access)
        assert session["role"] == "doctor"
