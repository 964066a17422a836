"""The public catalogue's query models, on their own and without pydantic (``core.query``): a catalogue route
is the app's most common first request, and a cold container answers it without importing pydantic
(bench/coldstart.py). The staff pages' pydantic ``Page`` in ``chalicelib.clinics.models`` has the same bounds."""
from __future__ import annotations

from typing import Literal, Optional

from chalicelib.core.errors import FieldError
from chalicelib.core.query import Query, param

Modality = Literal["in_person", "video", "chat"]
MODALITIES = ("in_person", "video", "chat")
_ID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_KIND = r"^[a-z][a-z0-9_]{1,39}$"
PAGE_LIMIT_MAX = 100
CURSOR_MAX = 2000


class Page(Query):
    limit: int = param(int, default=20, ge=1, le=PAGE_LIMIT_MAX)
    cursor: Optional[str] = param(max_length=CURSOR_MAX)


class CatalogClinicsQuery(Page):
    city: str = param(required=True, min_length=2, max_length=100)


class CatalogDoctorsQuery(Page):
    specialty: Optional[str] = param(pattern=_KIND)
    clinic_id: Optional[str] = param(pattern=_ID)
    modality: Optional[Modality] = param(MODALITIES)
    language: Optional[str] = param(pattern=r"^[a-z]{2}$")

    def check(self) -> list[FieldError]:
        if self.specialty or self.clinic_id:
            return []
        return [FieldError(f, "one_of", "filter by specialty or clinic_id") for f in ("specialty", "clinic_id")]
