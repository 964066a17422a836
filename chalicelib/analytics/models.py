"""Requests and answers of analytics."""
from __future__ import annotations

from datetime import timedelta
from typing import Literal, Optional

from pydantic import ConfigDict, Field, model_validator

from chalicelib.core.model import Day, Model

MAX_RANGE_DAYS = 366
_ID = r"^[0-9A-HJKMNP-TV-Z]{26}$"


def fields_error(code: str, message: str, *fields: str) -> Exception:
    """A rule across fields as a validation error naming each field (as clinics/models.py does)."""
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    return ValidationError.from_exception_data("request", [
        InitErrorDetails(type=PydanticCustomError(code, message), loc=(f,), input=None) for f in fields])


class Strict(Model):
    model_config = ConfigDict(extra="forbid")


class PeriodQuery(Strict):
    """A period in the clinic's local days: ``day``, ``week`` (Monday to Sunday), ``month`` around ``date``,
    or ``custom`` from ``date_from`` to ``date_to`` (inclusive, at most 366 days)."""
    period: Literal["day", "week", "month", "custom"] = "month"
    date: Optional[Day] = None
    date_from: Optional[Day] = None
    date_to: Optional[Day] = None
    doctor_id: Optional[str] = Field(default=None, pattern=_ID)
    branch_id: Optional[str] = Field(default=None, pattern=_ID)

    @model_validator(mode="after")
    def _shape(self):
        if self.period == "custom":
            missing = [f for f in ("date_from", "date_to") if getattr(self, f) is None]
            if missing:
                raise fields_error("required", "a custom period needs date_from and date_to", *missing)
            if self.date:
                raise fields_error("not_allowed", "a custom period takes date_from and date_to, not date", "date")
            assert self.date_from and self.date_to
            if self.date_to < self.date_from:
                raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
            if (self.date_to - self.date_from).days + 1 > MAX_RANGE_DAYS:
                raise fields_error("range_too_long", f"at most {MAX_RANGE_DAYS} days at once", "date_to")
        elif self.date_from or self.date_to:
            raise fields_error("not_allowed", "date_from and date_to are for period=custom",
                               *[f for f in ("date_from", "date_to") if getattr(self, f)])
        return self

    def bounds(self, today: Day) -> tuple[Day, Day]:
        if self.period == "custom":
            assert self.date_from and self.date_to
            return self.date_from, self.date_to
        anchor = self.date or today
        if self.period == "day":
            return anchor, anchor
        if self.period == "week":
            first = anchor - timedelta(days=anchor.weekday())
            return first, first + timedelta(days=6)
        first = anchor.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return first, nxt - timedelta(days=1)


class MyPeriodQuery(PeriodQuery):
    clinic_id: str = Field(pattern=_ID)


class SegmentQuery(Strict):
    """Patients for a recall: ``lapsed`` (the last completed visit of ``service_id``, or of any service, is
    older than ``days``), ``strikes`` (at least ``min_strikes``), ``spend`` (at least ``min_spend`` in minor
    units, highest first)."""
    kind: Literal["lapsed", "strikes", "spend"]
    service_id: Optional[str] = Field(default=None, pattern=_ID)
    days: int = Field(default=180, ge=1, le=3650)
    min_strikes: int = Field(default=1, ge=1, le=1000)
    min_spend: int = Field(default=0, ge=0, le=2_147_483_647)
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class ExportQuery(SegmentQuery):
    limit: int = Field(default=100, ge=1, le=100)  # unused by the export: it holds every patient of the segment


class RecallIn(Strict):
    patient_ids: list[str] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _ids(self):
        import re

        for i, pid in enumerate(self.patient_ids):
            if not re.match(_ID, pid):
                raise fields_error("invalid", "a patient id", f"patient_ids.{i}")
        if len(set(self.patient_ids)) != len(self.patient_ids):
            raise fields_error("duplicate", "each patient once", "patient_ids")
        return self


class RebuildIn(Strict):
    date_from: Day
    date_to: Day

    @model_validator(mode="after")
    def _shape(self):
        if self.date_to < self.date_from:
            raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
        if (self.date_to - self.date_from).days + 1 > MAX_RANGE_DAYS:
            raise fields_error("range_too_long", f"at most {MAX_RANGE_DAYS} days at once", "date_to")
        return self
