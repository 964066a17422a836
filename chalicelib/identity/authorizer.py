"""The API Gateway custom authorizer (it also runs under ``chalice local``).

A valid token yields the caller's id, role and session. A present but invalid
token is let through *marked* with why (``token_error``), so that the route
layer answers a precise problem+json 401 (``token_expired`` tells an app to
refresh); no view ever runs for such a request (core.web.caller_from).
A missing header is refused by API Gateway itself with 401.
"""
from __future__ import annotations

from chalice.app import AuthRequest, AuthResponse, Blueprint

bp = Blueprint(__name__)


@bp.authorizer(ttl_seconds=0)
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    from chalicelib import bootstrap
    from chalicelib.core.tokens import TokenError

    token = auth_request.token or ""
    scheme, _, value = token.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return AuthResponse(routes=["*"], principal_id="anonymous", context={"token_error": "token_invalid"})
    try:
        claims, session = bootstrap.identity().authorize(value.strip())
    except TokenError as exc:
        return AuthResponse(routes=["*"], principal_id="anonymous", context={"token_error": exc.code})
    return AuthResponse(routes=["*"], principal_id=claims["sub"],
                        context={"role": session["role"], "sid": claims["sid"],
                                 "mfa": session.get("second_factor", "sms")})
