"""Requests of the wallet's routes (query strings only: the wallet has no body a client sends)."""
from __future__ import annotations

from typing import Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.booking.models import LocalDate, check_range
from chalicelib.core.model import Model

# A clinic's report covers at most this many local days (a year, leap or not).
REPORT_MAX_DAYS = 366


class PageQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class CashbackQuery(Model):
    """Local days ``date_from`` .. ``date_to`` (inclusive) in ``time_zone`` (default: the clinic's first branch's)."""
    model_config = ConfigDict(extra="forbid")
    date_from: LocalDate
    date_to: LocalDate
    time_zone: Optional[str] = Field(default=None, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return None
        from chalicelib.core.tz import TimeZoneError, zone

        try:
            zone(v)
        except TimeZoneError:
            raise ValueError("an IANA time zone such as Europe/Moscow") from None
        return v

    @model_validator(mode="after")
    def _range(self):
        check_range(self.date_from, self.date_to, REPORT_MAX_DAYS - 1)
        return self
