"""CORS for exactly the portal's origin (PORTAL_BASE_URL), preflight included; nothing for others.

In AWS the portal is on CloudFront and calls the API across origins with a Bearer token.
"""
from __future__ import annotations

import pytest

from tests.conftest import body, jpost, make_staff, reset_process_state

PORTAL = "https://d111111abcdef8.cloudfront.net"


@pytest.fixture
def portal_env(backend_env, monkeypatch):
    monkeypatch.setenv("PORTAL_BASE_URL", PORTAL)
    reset_process_state()


def _preflight(client, path, origin, method="POST", headers="authorization, content-type"):
    return client.http.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


def test_the_portal_preflight_is_allowed_with_what_the_portal_sends(client, portal_env):
    r = _preflight(client, "/auth/login", PORTAL)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "accept-language", "idempotency-key"} <= allowed
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in r.headers  # Bearer tokens, no cookies
    # a protected path's preflight needs no token (browsers send none)
    r = _preflight(client, "/clinics/01JDXXXXXXXXXXXXXXXXXXXXXX/branches", PORTAL, "GET")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == PORTAL


@pytest.mark.parametrize("origin", ["https://evil.example", PORTAL + ".evil.example", "http://d111111abcdef8.cloudfront.net",
                                    "null", PORTAL + "/"])
def test_any_other_origin_gets_no_cors_at_all(client, portal_env, outbox, fixed_clock, origin):
    r = _preflight(client, "/auth/login", origin)
    assert r.status_code == 405 and body(r)["code"] == "method_not_allowed"
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    staff = make_staff(client, outbox, fixed_clock, "+79110000401", "clinic_admin")
    r = client.http.get("/me", headers={"Authorization": f"Bearer {staff['token']}", "Origin": origin})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    assert r.headers["Vary"] == "Origin"


def test_the_portal_reads_answers_and_problems_across_origins(client, portal_env, outbox, fixed_clock):
    staff = make_staff(client, outbox, fixed_clock, "+79110000402", "clinic_admin")
    r = client.http.get("/me", headers={"Authorization": f"Bearer {staff['token']}", "Origin": PORTAL})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == PORTAL
    assert r.headers["Vary"] == "Origin"
    # a problem+json too, with the headers a script needs to read (Retry-After, the correlation id)
    r = client.http.get("/me", headers={"Authorization": "Bearer nope", "Origin": PORTAL})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == PORTAL
    exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Retry-After", "X-Correlation-Id"} <= exposed
    r = jpost(client, "/auth/login", {"phone": "+79110000402"})  # no Origin: no CORS headers
    assert "Access-Control-Allow-Origin" not in r.headers


def test_a_preflight_for_a_method_the_path_does_not_serve_is_refused(client, portal_env):
    r = _preflight(client, "/auth/login", PORTAL, "DELETE")
    assert r.status_code == 405 and "Access-Control-Allow-Methods" not in r.headers
    assert "POST" in r.headers["Allow"]


def test_without_a_portal_origin_nothing_is_allowed(client, backend_env):
    """Locally the portal is served by the app itself: no origin is allowed across."""
    r = _preflight(client, "/auth/login", "http://127.0.0.1:8000")
    assert r.status_code == 405 and "Access-Control-Allow-Origin" not in r.headers
