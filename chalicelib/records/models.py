"""Requests and values of the medical card: its sections, sharing grants and the access log."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import AwareDatetime, ConfigDict, Field

from chalicelib.core.model import Day, Model

SECTIONS = ("allergies", "vaccinations", "conditions", "medications", "notes")
Section = Literal["allergies", "vaccinations", "conditions", "medications", "notes"]
# what a grant can open: the sections, and the signed conclusions of visits
GRANTABLE = SECTIONS + ("conclusions", "documents")
Grantable = Literal["allergies", "vaccinations", "conditions", "medications", "notes", "conclusions", "documents"]

class Strict(Model):
    model_config = ConfigDict(extra="forbid")


class AllergyIn(Strict):
    substance: str = Field(min_length=1, max_length=200)
    kind: Literal["allergy", "intolerance"] = "allergy"
    reaction: Optional[str] = Field(default=None, max_length=500)
    severity: Literal["mild", "moderate", "severe"]


class VaccinationIn(Strict):
    vaccine: str = Field(min_length=1, max_length=200)
    date: Day
    dose: Optional[str] = Field(default=None, max_length=50)
    lot: Optional[str] = Field(default=None, max_length=50)


class ConditionIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "resolved"]
    since: Optional[Day] = None


class MedicationIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    dose: Optional[str] = Field(default=None, max_length=100)
    since: Optional[Day] = None
    until: Optional[Day] = None


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=4000)
    date: Optional[Day] = None


ENTRY_MODELS: dict[str, type[Strict]] = {
    "allergies": AllergyIn, "vaccinations": VaccinationIn, "conditions": ConditionIn,
    "medications": MedicationIn, "notes": NoteIn,
}
# the dates of each section that may not lie in the future
PAST_DATES: dict[str, tuple[str, ...]] = {
    "vaccinations": ("date",), "conditions": ("since",), "medications": ("since",), "notes": ("date",),
}


ICD10 = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"  # the form of an ICD-10 code (J45.0, I10, U07.1, S52.521A)


class ConclusionIn(Strict):
    """A visit's conclusion. A draft may be partial; signing requires complaints, findings, diagnosis and
    recommendations. At most one of a follow-up date and an observation period."""

    complaints: Optional[str] = Field(default=None, max_length=4000)
    findings: Optional[str] = Field(default=None, max_length=8000)
    diagnosis: Optional[str] = Field(default=None, max_length=1000)
    icd10: Optional[str] = Field(default=None, max_length=8, pattern=ICD10)
    recommendations: Optional[str] = Field(default=None, max_length=8000)
    follow_up_date: Optional[Day] = None
    observation_months: Optional[int] = Field(default=None, ge=1, le=120)


SIGN_REQUIRED = ("complaints", "findings", "diagnosis", "recommendations")


class GrantIn(Strict):
    """Open the card to one doctor or to every doctor of one clinic, for all sections or some, until an instant."""

    doctor_id: Optional[str] = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    clinic_id: Optional[str] = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    sections: Optional[list[Grantable]] = Field(default=None, min_length=1, max_length=7)
    until: AwareDatetime


DOCUMENT_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/heic", "application/dicom")


class DocumentIn(Strict):
    """A document to upload into the card, or onto one visit of the card (``booking_id``): its name (sealed),
    type and exact size."""

    name: str = Field(min_length=1, max_length=200)
    content_type: Literal["application/pdf", "image/jpeg", "image/png", "image/heic", "application/dicom"]
    size_bytes: int = Field(ge=1, le=100 * 1024 * 1024)  # the settings' limit is lower (25 MiB by default)
    booking_id: Optional[str] = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")  # attach to a visit


class Page(Strict):
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)
