"""HTTP routes of accounts, sign-up, login, sessions and step-up."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import client_ip, json_response, no_content, parse_body, route
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.identity import models as m
else:  # the models load with the first route that uses them (cold start)
    m = lazy_module("chalicelib.identity.models")

bp = Blueprint(__name__)


def service():
    """The identity service, from the composition root."""
    return bootstrap.identity()


def body(request, model):
    from chalicelib.core.settings import get_settings

    return parse_body(request, model, get_settings().max_body_bytes)


# ------------------------------------------------------------------ public: sign-up, login, tokens

@route(bp, "/auth/signup", methods=("POST",))
def sign_up(request, caller):
    return json_response(service().sign_up(body(request, m.SignUpRequest), client_ip(request)), 202)


@route(bp, "/auth/signup/verify", methods=("POST",))
def verify_sign_up(request, caller):
    return json_response(service().verify_sign_up(body(request, m.VerifySignUpRequest)), 201)


@route(bp, "/auth/challenges/{challenge_id}/resend", methods=("POST",))
def resend(request, caller, challenge_id):
    body(request, m.Strict)  # no fields; still rejects unknown ones and bad JSON
    return json_response(service().resend(challenge_id, client_ip(request)), 202)


@route(bp, "/auth/login", methods=("POST",))
def login(request, caller):
    return json_response(service().login(body(request, m.LoginRequest), client_ip(request)), 202)


@route(bp, "/auth/login/verify", methods=("POST",))
def verify_login(request, caller):
    return service().verify_login(body(request, m.VerifyLoginRequest))


@route(bp, "/auth/refresh", methods=("POST",))
def refresh(request, caller):
    return service().refresh(body(request, m.RefreshRequest))


@route(bp, "/auth/password-reset", methods=("POST",))
def password_reset(request, caller):
    return json_response(service().request_password_reset(body(request, m.PasswordResetRequest),
                                                          client_ip(request)), 202)


@route(bp, "/auth/password-reset/confirm", methods=("POST",))
def password_reset_confirm(request, caller):
    service().confirm_password_reset(body(request, m.PasswordResetConfirm))
    return no_content()


# ------------------------------------------------------------------ the signed-in user

@route(bp, "/auth/logout", methods=("POST",), authorizer=token_authorizer)
def logout(request, caller):
    service().logout(caller)
    return no_content()


@route(bp, "/me", methods=("GET",), authorizer=token_authorizer)
def me(request, caller):
    return service().me(caller)


@route(bp, "/me", methods=("PATCH",), authorizer=token_authorizer)
def patch_me(request, caller):
    return service().patch_me(caller, body(request, m.ProfilePatch))


@route(bp, "/me/sessions", methods=("GET",), authorizer=token_authorizer)
def sessions(request, caller):
    return service().list_sessions(caller)


@route(bp, "/me/sessions/{session_id}", methods=("DELETE",), authorizer=token_authorizer)
def revoke_session(request, caller, session_id):
    service().revoke(caller, session_id)
    return no_content()


@route(bp, "/me/step-up", methods=("POST",), authorizer=token_authorizer)
def step_up(request, caller):
    body(request, m.Strict)
    return json_response(service().start_step_up(caller, client_ip(request)), 202)


@route(bp, "/me/step-up/verify", methods=("POST",), authorizer=token_authorizer)
def step_up_verify(request, caller):
    return service().verify_step_up(caller, body(request, m.StepUpVerify))


@route(bp, "/me/password", methods=("PUT",), authorizer=token_authorizer)
def change_password(request, caller):
    service().change_password(caller, body(request, m.PasswordChange))
    return no_content()


@route(bp, "/me/phone", methods=("PUT",), authorizer=token_authorizer)
def change_phone(request, caller):
    return json_response(service().start_phone_change(caller, body(request, m.PhoneChange),
                                                      client_ip(request)), 202)


@route(bp, "/me/phone/verify", methods=("POST",), authorizer=token_authorizer)
def change_phone_verify(request, caller):
    return service().verify_phone_change(caller, body(request, m.PhoneChangeVerify))


@route(bp, "/me/totp", methods=("POST",), authorizer=token_authorizer)
def totp_start(request, caller):
    body(request, m.Strict)
    return json_response(service().start_totp(caller), 201)


@route(bp, "/me/totp/confirm", methods=("POST",), authorizer=token_authorizer)
def totp_confirm(request, caller):
    return service().confirm_totp(caller, body(request, m.TotpConfirm))


@route(bp, "/me/totp", methods=("DELETE",), authorizer=token_authorizer)
def totp_remove(request, caller):
    service().remove_totp(caller)
    return no_content()


@route(bp, "/me/recovery-codes", methods=("POST",), authorizer=token_authorizer)
def recovery_codes(request, caller):
    body(request, m.Strict)
    return service().regenerate_recovery_codes(caller)
