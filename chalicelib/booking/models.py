"""Bookings, slots, waitlist, invitations, chat and the urgent queue."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal, Optional, TypedDict

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from chalicelib.core.model import Day, Model
from chalicelib.identity.models import Strict

_ID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_KIND = r"^[a-z][a-z0-9_]{1,39}$"
MAX_DAYS_AHEAD = 60  # the default booking horizon, and the longest range one query of days covers
MAX_HORIZON_DAYS = 366  # the longest booking horizon a clinic may set

Status = Literal["offered", "proposed", "held", "confirmed", "completed", "no_show", "cancelled_by_patient",
                 "cancelled_by_clinic", "expired", "declined"]
ACTIVE = ("offered", "proposed", "held", "confirmed")  # statuses that occupy time


class Booking(TypedDict, total=False):
    """The shape of a booking, in one place: what ``BookingService._new_booking`` builds, what
    ``store.booking_item`` stores (plus keys and index keys) and what ``BookingService.view`` shows.

    kind: scheduled | waitlist (an offer of freed time) | invitation (a doctor's) | urgent (the queue)
    status: see ``Status``; only ``ACTIVE`` statuses occupy time, a lapsed hold does not
    """
    booking_id: str
    kind: str
    status: str
    patient_id: str
    doctor_id: str
    clinic_id: str
    branch_id: str
    service_id: str
    service: dict[str, Any]       # a copy at booking time: name, duration, price, modality, preparation, kinds
    doctor_name: str
    clinic_name: dict[str, str]   # {"ru": ..., "en": ...}
    time_zone: str                # the branch's IANA zone
    start_utc: str                # ISO 8601 UTC, e.g. 2026-11-30T07:00:00Z
    end_utc: str
    local_day: str                # the start's date in ``time_zone``: calendars filter by it
    created_at: int               # epoch seconds
    version: int                  # +1 on every change
    policy: dict[str, Any]        # the cancellation window in force when booked
    locks: list[str]              # the 5-minute time locks it holds (doctor and resource units)
    resources: list[dict[str, Any]]  # [{"kind", "resource_id", "unit"}]
    resource_ids: list[str]
    hold_until: str               # held / offered / proposed: when the hold lapses
    prepayment: dict[str, Any]    # {"amount", "currency", "reason", "due_until"}
    waitlist_entry: dict[str, str]  # an offer's waitlist entry key
    note: str                     # an invitation's note from the doctor
    cancellation: dict[str, Any]  # {"by", "at", "late", "reason", "refund"}
    counted_in: list[list[str]]   # keys of the patient's visit counters it is counted in (clinic limits)


def Id(**kw):  # noqa: N802
    return Field(pattern=_ID, **kw)


def parse_instant(value: str) -> datetime:
    """An instant with an explicit offset or Z; a bare local time is ambiguous and refused."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("an ISO 8601 instant such as 2026-12-01T06:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("give the offset or Z, e.g. 2026-12-01T09:00:00+03:00")
    if not 2000 <= parsed.year <= 2100:
        raise ValueError("a date between the years 2000 and 2100")
    return parsed.astimezone(timezone.utc)


def _in_our_years(value: date) -> date:
    if not 2000 <= value.year <= 2100:
        raise ValueError("a date between the years 2000 and 2100")
    return value


# A calendar date people ask for (a local day), within the years the service plans in.
LocalDate = Annotated[Day, AfterValidator(_in_our_years)]


def check_range(d_from: date, d_to: date, max_days: int) -> None:
    """A range of local days: a 422 naming ``date_from`` and ``date_to``, never the body."""
    from chalicelib.clinics.models import fields_error

    if d_to < d_from:
        raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
    if (d_to - d_from).days > max_days:
        raise fields_error("range_too_long", f"at most {max_days} days at once", "date_to", "date_from")


class SlotsQuery(Model):
    model_config = ConfigDict(extra="forbid")
    clinic_id: str = Id()
    service_id: str = Id()
    branch_id: Optional[str] = Id(default=None)
    date_from: LocalDate
    date_to: LocalDate

    @model_validator(mode="after")
    def _range(self):
        check_range(self.date_from, self.date_to, MAX_DAYS_AHEAD)
        return self


class BookingIn(Strict):
    clinic_id: str = Id()
    service_id: str = Id()
    doctor_id: str = Id()
    branch_id: Optional[str] = Id(default=None)
    start: str = Field(max_length=40, description="the slot's start as given by the slots endpoint (UTC or offset)")

    @field_validator("start")
    @classmethod
    def _instant(cls, v: str) -> str:
        parse_instant(v)
        return v


class RescheduleIn(Strict):
    start: str = Field(max_length=40)
    version: Optional[int] = Field(default=None, ge=1, le=2_147_483_647)

    _instant = field_validator("start")(BookingIn._instant.__func__)  # type: ignore[attr-defined]


class ReassignIn(Strict):
    """Move a visit to another doctor of the clinic at the same time (the clinic's choice after a leave)."""
    doctor_id: str = Id()
    version: Optional[int] = Field(default=None, ge=1, le=2_147_483_647)


class CancelIn(Strict):
    reason: Optional[str] = Field(default=None, min_length=3, max_length=500)


class ListQuery(Model):
    model_config = ConfigDict(extra="forbid")
    when: Literal["upcoming", "past"] = "upcoming"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


def _zone_name(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    from chalicelib.core.tz import TimeZoneError, zone

    try:
        zone(value)
    except TimeZoneError:
        raise ValueError("an IANA time zone such as Europe/Kaliningrad") from None
    return value


class AgendaQuery(Model):
    """Local days: in ``time_zone`` if given, otherwise each visit on its own clinic's local day."""
    model_config = ConfigDict(extra="forbid")
    date_from: LocalDate
    date_to: LocalDate
    time_zone: Optional[str] = Field(default=None, max_length=64)
    limit: int = Field(default=100, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)

    _zone = field_validator("time_zone")(classmethod(lambda cls, v: _zone_name(v)))

    @model_validator(mode="after")
    def _range(self):
        check_range(self.date_from, self.date_to, 31)
        return self


class RangeQuery(AgendaQuery):
    doctor_id: Optional[str] = Id(default=None)
    resource_id: Optional[str] = Id(default=None)


class WaitlistIn(Strict):
    clinic_id: str = Id()
    service_id: str = Id()
    doctor_id: str = Id()
    date_from: LocalDate
    date_to: LocalDate

    @model_validator(mode="after")
    def _range(self):
        check_range(self.date_from, self.date_to, MAX_DAYS_AHEAD)
        return self


class InviteIn(Strict):
    patient_id: str = Id()
    clinic_id: str = Id()
    service_id: str = Id()
    branch_id: Optional[str] = Id(default=None)
    start: str = Field(max_length=40)
    note: Optional[str] = Field(default=None, max_length=500)

    _instant = field_validator("start")(BookingIn._instant.__func__)  # type: ignore[attr-defined]


class MessageIn(Strict):
    text: str = Field(min_length=1, max_length=4000)


class Page(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class UrgentJoin(Strict):
    modality: Literal["video", "chat"] = "video"
    complaint: Optional[str] = Field(default=None, max_length=1000)


SpecialtyPath = Field(pattern=_KIND)
