"""The whole patient journey against DynamoDB Local: sign up, verify, log in
with password and SMS code, call /me, refresh, log out."""
from tests.conftest import body, jpost, log_in, sign_up

PHONE = "+79161234567"


def test_sign_up_verify_log_in_and_read_profile(client, outbox, fixed_clock):
    tokens = sign_up(client, outbox, PHONE)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900

    r = jpost(client, "/me", token=tokens["access_token"], method="get")
    assert r.status_code == 200, r.body
    me = body(r)
    assert me["phone"] == PHONE and me["first_name"] == "Анна" and me["role"] == "patient"
    assert me["consent"]["version"] == "2026-11" and me["second_factor"] == "sms"

    fixed_clock.advance(seconds=61)  # the resend cooldown between two SMS to one phone
    again = log_in(client, outbox, PHONE)
    r = jpost(client, "/me", token=again["access_token"], method="get")
    assert body(r)["user_id"] == me["user_id"]

    r = jpost(client, "/auth/refresh", {"refresh_token": again["refresh_token"]})
    assert r.status_code == 200, r.body
    fresh = body(r)
    assert fresh["refresh_token"] != again["refresh_token"]

    r = jpost(client, "/auth/logout", token=fresh["access_token"])
    assert r.status_code == 204
    r = jpost(client, "/me", token=fresh["access_token"], method="get")
    assert r.status_code == 401 and body(r)["code"] == "session_revoked"
