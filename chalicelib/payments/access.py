"""Who may see and move a payment, decided once for the payments feature.

A patient sees their own payments; a clinic's administrators (with their authenticator session) see and
refund their clinic's. Anyone else gets 404: another clinic's payment is never revealed to exist.
"""
from __future__ import annotations

from typing import Any

from chalicelib.clinics import access as clinic_access
from chalicelib.core.errors import forbidden, not_found
from chalicelib.identity import access as identity_access


def require_patient(caller: Any) -> None:
    if not identity_access.has_role(caller, "patient"):
        raise forbidden("role_not_allowed", "payments for a visit are made from a patient's account")


def require_clinic_admin(caller: Any, clinic_id: str) -> dict[str, Any]:
    """The clinic, for its administrator (403 another role or no TOTP, 404 another clinic)."""
    return clinic_access.require_admin(caller, clinic_id)


def relation(caller: Any, p: dict[str, Any]) -> str:
    """'patient' or 'clinic' for whoever may see this payment; 404 for anyone else."""
    if caller.role == "patient" and p["patient_id"] == caller.user_id:
        return "patient"
    if caller.role == "clinic_admin" and clinic_access.is_admin(p["clinic_id"], caller.user_id):
        identity_access.require_totp(caller)
        return "clinic"
    raise not_found()
