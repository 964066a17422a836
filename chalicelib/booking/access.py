"""Who may see and change a booking, decided once for the booking feature.

Roles and the authenticator come from ``identity.access``; whether staff belong to the booking's
clinic comes from ``clinics.access`` (a doctor whose removal from a clinic has begun no longer sees
that clinic's bookings). Anyone else gets 404: a booking's existence is never revealed.
"""
from __future__ import annotations

from typing import Any

from chalicelib.clinics import access as clinic_access
from chalicelib.core.errors import forbidden, not_found
from chalicelib.identity import access as identity_access


def require_patient(caller: Any) -> None:
    if not identity_access.has_role(caller, "patient"):
        raise forbidden("role_not_allowed", "bookings are made from a patient's account")


def require_doctor(caller: Any) -> None:
    identity_access.require_staff(caller, "doctor")


def relation(caller: Any, b: dict[str, Any], as_clinic: bool = True) -> str:
    """The caller's relation to the booking (patient, doctor or clinic), or 404. Staff need their
    authenticator session (403 ``totp_required``)."""
    if caller.role == "patient" and b["patient_id"] == caller.user_id:
        return "patient"
    if caller.role == "doctor" and b["doctor_id"] == caller.user_id:
        identity_access.require_totp(caller)
        if clinic_access.is_doctor_of(b["clinic_id"], caller.user_id):
            return "doctor"
        raise not_found()
    if as_clinic and caller.role == "clinic_admin" and clinic_access.is_admin(b["clinic_id"], caller.user_id):
        identity_access.require_totp(caller)
        return "clinic"
    raise not_found()


def require_clinic_admin(caller: Any, clinic_id: str) -> None:
    """An administrator of this clinic with an authenticator session: 403 for another role, 404 for a
    clinic the caller does not administer."""
    clinic_access.require_admin(caller, clinic_id)


def active_clinics_of_doctor(doctor_id: str) -> set[str]:
    """The clinics a doctor works in now (a removal in progress excluded)."""
    return clinic_access.clinics_of_doctor(doctor_id)
