"""Who may act on what, for identity, decided once. Other features ask here instead of reading
``caller.role`` or ``caller.mfa`` themselves.

    from chalicelib.identity import access
    access.require_role(caller, "doctor", "clinic_admin")   # 403 role_not_allowed
    access.require_totp(caller)                              # 403 totp_required
    access.require_staff(caller, "clinic_admin")            # both of the above
    access.has_role(caller, "platform_admin")                # a bool, for branching
    access.require_step_up(caller, now)                      # 403 step_up_required; spends the grant

``caller`` is anything with ``user_id``, ``role``, ``session_id`` and ``mfa`` (core.web.Caller).
The role and second factor come from the caller's live session (the authorizer reads them there),
so a role change or a revoked session applies to the next request.
"""
from __future__ import annotations

from typing import Any

from chalicelib.core.errors import forbidden
from chalicelib.identity.models import ROLES


def has_role(caller: Any, *roles: str) -> bool:
    return caller is not None and getattr(caller, "role", None) in roles


def require_role(caller: Any, *roles: str) -> None:
    """403 ``role_not_allowed`` unless the caller holds one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    if not has_role(caller, *roles):
        raise forbidden("role_not_allowed")


def require_totp(caller: Any) -> None:
    """403 ``totp_required`` unless this session signed in with an authenticator app."""
    if getattr(caller, "mfa", None) != "totp":
        raise forbidden("totp_required", "Enrol an authenticator app and sign in with it first.")


def require_staff(caller: Any, *roles: str) -> None:
    """Staff work: one of ``roles`` and a session proved with an authenticator app."""
    require_role(caller, *roles)
    require_totp(caller)


def require_step_up(caller: Any, now: int, fresh_code: bool = False) -> None:
    """A sensitive change: spends the fresh second factor granted to this session (once), or 403.
    ``fresh_code``: only a code verified through step-up counts, however young the session (moving
    the phone, removing the second factor)."""
    from chalicelib.identity import store

    if not store.consume_step_up(caller.session_id, now, fresh_code=fresh_code):
        raise forbidden("step_up_required")


__all__ = ["ROLES", "has_role", "require_role", "require_totp", "require_staff", "require_step_up"]
