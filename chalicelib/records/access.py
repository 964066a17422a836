"""Who may see and change which part of a medical card, decided here and nowhere else.

- The patient: their whole card. Another patient: 404 (a card's existence is never revealed).
- A doctor (authenticator session): the sections of the patient's active grants to them, or to a
  clinic they work in now; an expired or revoked grant counts for nothing. Without a grant, only
  the entries they wrote themselves. A booking or a care relation alone opens nothing.
- Clinic administrators and platform administrators: 403; a card is opened to doctors, never to a
  clinic's office or to the operator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from chalicelib.core.errors import forbidden, not_found
from chalicelib.identity import access as identity_access
from chalicelib.records.models import GRANTABLE


@dataclass(frozen=True)
class View:
    """What a caller may see of one card, and on what ground."""

    relation: str  # patient | doctor
    sections: frozenset[str] = field(default_factory=frozenset)  # sections seen in full
    grant_ids: tuple[str, ...] = ()  # the grants that open them
    clinic_id: Optional[str] = None  # the clinic of a whole-clinic grant, where one opened the card
    author_id: Optional[str] = None  # a doctor also sees the entries they wrote

    @property
    def is_patient(self) -> bool:
        return self.relation == "patient"

    def sees(self, entry: dict[str, Any]) -> bool:
        return self.is_patient or entry["section"] in self.sections or entry.get("created_by") == self.author_id

    def sees_document(self, d: dict[str, Any]) -> bool:
        return self.is_patient or "documents" in self.sections or d.get("created_by") == self.author_id

    def sees_conclusion(self, c: dict[str, Any]) -> bool:
        """Signed conclusions as the patient's card shows them; a doctor also sees their own drafts."""
        if c.get("doctor_id") == self.author_id:
            return True
        return c["status"] == "signed" and (self.is_patient or "conclusions" in self.sections)

    def may_write(self, section: str) -> bool:
        return self.is_patient or section in self.sections


def precondition_failed() -> Any:
    """412: the ``If-Match`` the client sent is not the object's current ETag (it changed since they read it)."""
    from chalicelib.core.errors import AppError

    return AppError(code="precondition_failed", status=412,
                    detail="the record changed since you read it; read it again")


def require_patient(caller: Any) -> None:
    if not identity_access.has_role(caller, "patient"):
        raise forbidden("role_not_allowed", "the card is kept from a patient's account")


def require_doctor(caller: Any) -> None:
    identity_access.require_staff(caller, "doctor")


def live(grant: dict[str, Any], now: datetime) -> bool:
    from chalicelib.core.clock import iso

    return grant.get("status") == "active" and grant["until"] > iso(now)


def decide(caller: Any, patient_id: str, grants: list[dict[str, Any]], now: datetime,
           clinics_of_doctor: Callable[[str], set[str]]) -> View:
    """The caller's view of ``patient_id``'s card from the card's grants (403 wrong role, 404 another
    patient). ``clinics_of_doctor`` is asked only when a live whole-clinic grant could apply."""
    if identity_access.has_role(caller, "patient"):
        if caller.user_id == patient_id:
            return View("patient", frozenset(GRANTABLE))
        raise not_found()
    require_doctor(caller)
    mine = [g for g in grants if live(g, now) and g["grantee_kind"] == "doctor" and g["grantee_id"] == caller.user_id]
    clinic_grants = [g for g in grants if live(g, now) and g["grantee_kind"] == "clinic"]
    clinic_id = None
    if clinic_grants:
        works_in = clinics_of_doctor(caller.user_id)
        clinic_grants = [g for g in clinic_grants if g["grantee_id"] in works_in]
        clinic_id = clinic_grants[0]["grantee_id"] if clinic_grants else None
    opened = mine + clinic_grants
    sections: set[str] = set()
    for g in opened:
        sections |= set(g.get("sections") or GRANTABLE)
    return View("doctor", frozenset(sections), tuple(g["grant_id"] for g in opened), clinic_id, caller.user_id)
