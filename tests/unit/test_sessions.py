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
