"""Requests and values of the medical card: its sections, sharing grants and the access log."""
from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SECTIONS = ("allergies", "vaccinations", "conditions", "medications", "notes")
Section = Literal["allergies", "vaccinations", "conditions", "medications", "notes"]

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllergyIn(Strict):
    substance: str = Field(min_length=1, max_length=200)
    kind: Literal["allergy", "intolerance"] = "allergy"
    reaction: Optional[str] = Field(default=None, max_length=500)
    severity: Literal["mild", "moderate", "severe"]


class VaccinationIn(Strict):
    vaccine: str = Field(min_length=1, max_length=200)
    date: dt.date
    dose: Optional[str] = Field(default=None, max_length=50)
    lot: Optional[str] = Field(default=None, max_length=50)


class ConditionIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "resolved"]
    since: Optional[dt.date] = None


class MedicationIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    dose: Optional[str] = Field(default=None, max_length=100)
    since: Optional[dt.date] = None
    until: Optional[dt.date] = None


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=4000)
    date: Optional[dt.date] = None


ENTRY_MODELS: dict[str, type[Strict]] = {
    "allergies": AllergyIn, "vaccinations": VaccinationIn, "conditions": ConditionIn,
    "medications": MedicationIn, "notes": NoteIn,
}
# the dates of each section that may not lie in the future
PAST_DATES: dict[str, tuple[str, ...]] = {
    "vaccinations": ("date",), "conditions": ("since",), "medications": ("since",), "notes": ("date",),
}


class GrantIn(Strict):
    """Open the card to one doctor or to every doctor of one clinic, for all sections or some, until an instant."""

    doctor_id: Optional[str] = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    clinic_id: Optional[str] = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    sections: Optional[list[Section]] = Field(default=None, min_length=1, max_length=5)
    until: AwareDatetime


class Page(Strict):
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)
