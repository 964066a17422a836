"""The public catalogue's query models, on their own: a catalogue route (the app's most common first
request) loads these few classes, not every model of clinics and identity (cold start, bench/coldstart.py).
``chalicelib.clinics.models`` re-exports them."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import ConfigDict, Field, model_validator

from chalicelib.core.model import Model, fields_error

Modality = Literal["in_person", "video", "chat"]
_ID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_KIND = r"^[a-z][a-z0-9_]{1,39}$"


class Page(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class CatalogClinicsQuery(Page):
    city: str = Field(min_length=2, max_length=100)


class CatalogDoctorsQuery(Page):
    specialty: Optional[str] = Field(default=None, pattern=_KIND)
    clinic_id: Optional[str] = Field(default=None, pattern=_ID)
    modality: Optional[Modality] = None
    language: Optional[str] = Field(default=None, pattern=r"^[a-z]{2}$")

    @model_validator(mode="after")
    def _one(self):
        if not self.specialty and not self.clinic_id:
            raise fields_error("one_of", "filter by specialty or clinic_id", "specialty", "clinic_id")
        return self
