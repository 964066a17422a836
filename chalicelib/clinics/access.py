"""Who may act on what in a clinic, decided once. Other features ask here, never clinics/store.

- Staff act only with an authenticator app (``mfa == "totp"``): 403 ``totp_required`` otherwise.
- A wrong role is 403 ``role_not_allowed``.
- Another tenant's clinic (or one that does not exist) is 404: its existence is never revealed.
- A doctor whose membership is being removed (``status = "removing"``) is no longer a doctor of the
  clinic, from the moment the removal began.
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.clinics import store
from chalicelib.core.errors import forbidden, not_found
from chalicelib.core.ids import is_ulid


def require_staff(caller: Any, *roles: str) -> None:
    """403 unless the caller has one of ``roles`` and signed in with an authenticator app."""
    if caller.role not in roles:
        raise forbidden("role_not_allowed")
    if caller.mfa != "totp":
        raise forbidden("totp_required", "Enrol an authenticator app and sign in with it first.")


def is_admin(clinic_id: str, user_id: str) -> bool:
    """Whether the user administers the clinic (one GetItem)."""
    return is_ulid(clinic_id) and is_ulid(user_id) and store.is_admin(clinic_id, user_id)


def require_admin(caller: Any, clinic_id: str) -> dict[str, Any]:
    """The clinic, if the caller is its administrator: 403 for another role or without TOTP, 404 for a
    clinic the caller does not administer."""
    require_staff(caller, "clinic_admin")
    if not is_admin(clinic_id, caller.user_id):
        raise not_found()
    clinic = store.get_clinic(clinic_id)
    if clinic is None:
        raise not_found()
    return clinic


def require_platform_admin(caller: Any, clinic_id: str) -> dict[str, Any]:
    require_staff(caller, "platform_admin")
    clinic = store.get_clinic(clinic_id) if is_ulid(clinic_id) else None
    if clinic is None:
        raise not_found()
    return clinic


def readable_clinic(caller: Any, clinic_id: str) -> dict[str, Any]:
    """The clinic for a reader: its own administrators, or any platform administrator."""
    if caller.role == "platform_admin":
        return require_platform_admin(caller, clinic_id)
    return require_admin(caller, clinic_id)


def doctor_membership(clinic_id: str, doctor_id: str) -> Optional[dict[str, Any]]:
    """The doctor's membership of the clinic, or None (also while it is being removed)."""
    if not (is_ulid(clinic_id) and is_ulid(doctor_id)):
        return None
    member = store.get_membership(clinic_id, doctor_id)
    if member is None or member.get("status") == store.REMOVING:
        return None
    return member


def is_doctor_of(clinic_id: str, doctor_id: str) -> bool:
    """Whether the doctor works in the clinic now (false from the moment a removal began)."""
    return doctor_membership(clinic_id, doctor_id) is not None


def require_doctor_of(clinic_id: str, doctor_id: str) -> dict[str, Any]:
    """The membership, or 404."""
    member = doctor_membership(clinic_id, doctor_id)
    if member is None:
        raise not_found()
    return member


def can_see_clinic_booking(caller: Any, clinic_id: str, doctor_id: str) -> bool:
    """Whether staff may see a booking of the clinic: its administrators, or the booking's doctor while
    they still work there."""
    if caller.role == "clinic_admin":
        return is_admin(clinic_id, caller.user_id)
    if caller.role == "doctor":
        return caller.user_id == doctor_id and is_doctor_of(clinic_id, doctor_id)
    return False


def clinics_of_doctor(doctor_id: str) -> set[str]:
    """The clinics a doctor works in now (a removal in progress excluded); one paged query."""
    return {m["clinic_id"] for m in store.doctor_memberships(doctor_id) if m.get("status") != store.REMOVING}


def doctors_of_clinic(clinic_id: str) -> set[str]:
    """The doctors who work in a clinic now (a removal in progress excluded); paged to the end."""
    from chalicelib.core import db

    items = db.query_all("PK = :pk AND begins_with(SK, :pre)",
                         db.values(pk=store.clinic_pk(clinic_id), pre="DOCTOR#", removing=store.REMOVING),
                         filter_expression="attribute_not_exists(#st) OR #st <> :removing", names={"#st": "status"})
    return {i["doctor_id"] for i in items if i.get("type") == "clinic_doctor"}


def policy(clinic_id: str, name: str, default: Any = None) -> Any:
    """One of a clinic's policies (what other features follow: feedback after a visit, ...), or ``default``
    for a clinic that does not set it or does not exist."""
    clinic = store.get_clinic(clinic_id) if clinic_id else None
    return ((clinic or {}).get("policies") or {}).get(name, default)


def cashback_terms(clinic_id: str) -> Optional[dict[str, Any]]:
    """What the wallet follows for a clinic (payments/wallet.py): its currency and cashback policies, or None
    for a clinic that does not exist."""
    clinic = store.get_clinic(clinic_id) if is_ulid(clinic_id) else None
    if clinic is None:
        return None
    return {"currency": clinic.get("currency"), "policies": clinic.get("policies") or {}}


def home_zone(clinic_id: str) -> Optional[str]:
    """The time zone a clinic's reports count local days in: its first branch's (None without branches)."""
    from chalicelib.core import db

    branches = db.query_prefix(store.clinic_pk(clinic_id), "BRANCH#", cap=500) if is_ulid(clinic_id) else []
    return str(branches[0]["time_zone"]) if branches else None
