"""Clinics, branches, services, resources, doctors, schedules, policies and payouts."""
from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from chalicelib.clinics.catalog_models import (  # noqa: F401  (the catalogue's query models live on their own)
    _ID,
    _KIND,
    CURSOR_MAX,
    PAGE_LIMIT_MAX,
    CatalogClinicsQuery,
    CatalogDoctorsQuery,
    Modality,
)
from chalicelib.core.model import Day, Model, fields_error  # noqa: F401  (fields_error: used by booking too)
from chalicelib.core.money import MINOR_UNITS
from chalicelib.identity.models import Strict, normalize_phone

ClinicStatus = Literal["draft", "submitted", "verified", "active", "rejected"]


class Page(Model):
    """A page of a staff list (pydantic, as the staff routes' other models; the public catalogue's ``Page`` is
    ``catalog_models.Page``, with the same bounds)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=PAGE_LIMIT_MAX)
    cursor: Optional[str] = Field(default=None, max_length=CURSOR_MAX)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _wall_time(v: time) -> time:
    if v.tzinfo is not None:
        raise ValueError("a local wall time like 09:00, without an offset (the branch's zone applies)")
    if v.second or v.microsecond:
        raise ValueError("hours and minutes only, like 09:00")
    return v


WallTime = Annotated[time, AfterValidator(_wall_time)]


def Id():  # noqa: N802
    return Field(pattern=_ID)


class Text(Strict):
    """A text for people in both languages of the product."""

    ru: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)


class ShortText(Strict):
    ru: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


def check_zone(value: str) -> str:
    from chalicelib.core.tz import TimeZoneError, zone

    try:
        zone(value)
    except TimeZoneError:
        raise ValueError("not an IANA time zone such as Europe/Moscow") from None
    return value


class MoneyIn(Strict):
    amount: int = Field(ge=0, le=10**12, description="minor units (kopecks for RUB)")
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("amount", mode="before")
    @classmethod
    def _integer(cls, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("an integer number of minor units; fractions of a minor unit are not money")
        return v

    @field_validator("currency")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in MINOR_UNITS:
            raise ValueError("not a supported ISO 4217 currency")
        return v


class Contacts(Strict):
    phone: Optional[str] = Field(default=None, min_length=1, max_length=32)
    email: Optional[str] = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    website: Optional[str] = Field(default=None, max_length=300, pattern=r"^https://\S+$")
    public: list[Literal["phone", "email", "website"]] = Field(default_factory=list, max_length=3)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v):
        return None if v is None else normalize_phone(v)


class ClinicCreate(Strict):
    legal_name: str = Field(min_length=2, max_length=300)
    display_name: ShortText
    tax_id: str = Field(min_length=5, max_length=20, pattern=r"^[0-9A-Za-z-]+$")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    contacts: Contacts = Field(default_factory=Contacts)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in MINOR_UNITS:
            raise ValueError("not a supported ISO 4217 currency")
        return v


class ClinicPatch(Strict):
    display_name: Optional[ShortText] = None
    contacts: Optional[Contacts] = None
    version: int = Field(ge=1, le=2_147_483_647)


class Rejection(Strict):
    reason: str = Field(min_length=3, max_length=1000)


class Policies(Strict):
    cancellation_window_hours: int = Field(default=24, ge=0, le=24 * 14)
    no_show_limit: int = Field(default=2, ge=1, le=20)
    no_show_window_days: int = Field(default=180, ge=1, le=730)
    hold_minutes: int = Field(default=30, ge=5, le=24 * 60)
    minimum_notice_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    cashback_percent: int = Field(default=10, ge=0, le=100)
    cashback_cap: Optional[MoneyIn] = None
    # the wallet (payments/wallet.py): the share of a payment cashback may pay, and how long a lot lasts
    cashback_max_spend_percent: int = Field(default=50, ge=0, le=100)
    cashback_expiry_days: int = Field(default=365, ge=1, le=3650)
    # what a prepayment refunds (percent of it) on a late cancellation by the patient and on a no-show:
    # 0 keeps all, 100 refunds all; a cancellation inside the free window and the clinic's own refund in full
    late_cancel_refund_percent: int = Field(default=0, ge=0, le=100)
    no_show_refund_percent: int = Field(default=0, ge=0, le=100)
    feedback_after_visit: bool = True
    # per-patient limits, enforced in the booking transaction; none means no limit
    max_future_visits_per_doctor: Optional[int] = Field(default=None, ge=1, le=50)
    max_visits_per_day: Optional[int] = Field(default=None, ge=1, le=20)
    # how far ahead patients may book (free slots reach that far)
    booking_horizon_days: int = Field(default=60, ge=1, le=366)
    # visit reminders, hours before the start (notify/reminders.py); whole days keep the wall clock
    reminder_hours: list[Annotated[int, Field(ge=1, le=336)]] = Field(default_factory=lambda: [24, 2],
                                                                      max_length=4)
    version: Optional[int] = Field(default=None, ge=1, le=2_147_483_647)

    @field_validator("reminder_hours")
    @classmethod
    def _distinct_hours(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("each reminder offset once")
        return sorted(v, reverse=True)


class Interval(Strict):
    start: WallTime
    end: WallTime

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise fields_error("end_before_start", "end must be after start", "end", "start")
        return self


# A weekday's open intervals: at most 12 (openapi.yaml OpeningHours, maxItems).
DayHours = Annotated[list[Interval], Field(max_length=12)]


class BranchIn(Strict):
    name: ShortText
    address: str = Field(min_length=5, max_length=500)
    city: str = Field(min_length=2, max_length=100)
    time_zone: str = Field(max_length=64)
    opening_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], DayHours] = Field(
        default_factory=dict)
    phone: Optional[str] = Field(default=None, min_length=1, max_length=32)

    _zone = field_validator("time_zone")(check_zone)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v):
        return None if v is None else normalize_phone(v)


class BranchPatch(Strict):
    name: Optional[ShortText] = None
    address: Optional[str] = Field(default=None, min_length=5, max_length=500)
    opening_hours: Optional[dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], DayHours]] = None
    phone: Optional[str] = Field(default=None, min_length=1, max_length=32)
    version: int = Field(ge=1, le=2_147_483_647)


class Prepayment(Strict):
    kind: Literal["none", "fixed", "percent"] = "none"
    amount: Optional[MoneyIn] = None
    percent: Optional[int] = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _shape(self):
        if self.kind == "fixed" and (self.amount is None or self.percent is not None):
            raise ValueError("a fixed prepayment needs amount (and no percent)")
        if self.kind == "percent" and (self.percent is None or self.amount is not None):
            raise ValueError("a percentage prepayment needs percent between 1 and 100 (and no amount)")
        if self.kind == "none" and (self.amount is not None or self.percent is not None):
            raise ValueError("no prepayment takes neither amount nor percent")
        return self


MAX_LOCKS = 48  # 5-minute blocks one booking may claim (doctor + each resource), see booking.store


class ServiceIn(Strict):
    name: ShortText
    duration_minutes: int = Field(ge=5, le=4 * 60, multiple_of=5)
    price: MoneyIn
    modality: Modality
    preparation: Optional[Text] = None
    resource_kinds: list[str] = Field(default_factory=list, max_length=5)
    prepayment: Prepayment = Field(default_factory=Prepayment)
    recall_after_days: Optional[int] = Field(default=None, ge=1, le=3650)
    specialty: Optional[str] = Field(default=None, pattern=_KIND)

    @field_validator("resource_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        for k in v:
            if not re.match(_KIND, k):
                raise ValueError("kinds are lower-case words like mri or ultrasound_room")
        if len(set(v)) != len(v):
            raise ValueError("each kind once")
        return v

    @model_validator(mode="after")
    def _bookable(self):
        blocks = self.duration_minutes // 5 * (1 + len(self.resource_kinds))
        if blocks > MAX_LOCKS:
            raise ValueError(f"a visit that needs {len(self.resource_kinds)} resource kind(s) lasts at most "
                             f"{MAX_LOCKS // (1 + len(self.resource_kinds)) * 5} minutes")
        return self


class ServicePatch(Strict):
    name: Optional[ShortText] = None
    duration_minutes: Optional[int] = Field(default=None, ge=5, le=4 * 60, multiple_of=5)
    price: Optional[MoneyIn] = None
    preparation: Optional[Text] = None
    prepayment: Optional[Prepayment] = None
    recall_after_days: Optional[int] = Field(default=None, ge=1, le=3650)
    active: Optional[bool] = None
    version: int = Field(ge=1, le=2_147_483_647)


class ResourceIn(Strict):
    kind: str = Field(pattern=_KIND)
    name: str = Field(min_length=1, max_length=200)
    capacity: int = Field(default=1, ge=1, le=100)


class InvitationIn(Strict):
    role: Literal["clinic_admin", "doctor"]
    phone: Optional[str] = Field(default=None, min_length=1, max_length=32)
    email: Optional[str] = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("phone")
    @classmethod
    def _phone(cls, v):
        return None if v is None else normalize_phone(v)

    @model_validator(mode="after")
    def _one(self):
        if self.phone is not None and self.email is not None:
            raise fields_error("one_of", "give exactly one of phone or email, not both", "phone", "email")
        if self.phone is None and self.email is None:
            raise fields_error("one_of", "give exactly one of phone or email", "phone", "email")
        if self.role == "doctor" and self.phone is None:
            raise fields_error("phone_required", "doctors are invited by phone", "phone")
        return self


class InvitationAccept(Strict):
    invitation_id: str = Id()
    code: str = Field(pattern=r"^[0-9]{6}$")


class DoctorProfileIn(Strict):
    specialties: list[str] = Field(min_length=1, max_length=10)
    category: Literal["none", "second", "first", "highest"] = "none"
    years_of_experience: int = Field(ge=0, le=70)
    languages: list[Literal["ru", "en", "de", "fr", "es", "it", "zh", "ar", "tr", "uk", "kk", "hy", "ka", "az", "uz"]] \
        = Field(min_length=1, max_length=10)
    bio: Optional[Text] = None
    photo_url: Optional[str] = Field(default=None, max_length=500, pattern=r"^https://\S+$")
    takes_duty: bool = False

    @field_validator("specialties")
    @classmethod
    def _specs(cls, v: list[str]) -> list[str]:
        for s in v:
            if not re.match(_KIND, s):
                raise ValueError("specialties are lower-case words like cardiologist or paediatric_urologist")
        if len(set(v)) != len(v):
            raise ValueError("each specialty once")
        return v


def on_grid(**values: Optional[time]) -> None:
    """Working time starts and ends on the 5-minute grid that bookings are claimed on."""
    off = [name for name, v in values.items() if v is not None and (v.minute % 5 or v.second or v.microsecond)]
    if off:
        raise fields_error("off_grid", "times are whole multiples of 5 minutes, e.g. 09:00, 09:05, 09:10", *off)


class TemplateIn(Strict):
    branch_id: str = Id()
    modality: Modality
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: WallTime
    end: WallTime
    valid_from: Optional[Day] = None
    valid_until: Optional[Day] = None

    @model_validator(mode="after")
    def _order(self):
        # an end at or before the start runs past midnight (22:00-02:00 a night duty, 20:00-00:00 to midnight)
        if self.end == self.start:
            raise fields_error("end_equals_start", "end must differ from start (an end before start runs past "
                               "midnight)", "end", "start")
        on_grid(start=self.start, end=self.end)
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise fields_error("end_before_start", "valid_until is before valid_from", "valid_until", "valid_from")
        return self


class ExceptionIn(Strict):
    kind: Literal["leave", "extra"]
    date_from: Day
    date_until: Day
    start: Optional[WallTime] = None
    end: Optional[WallTime] = None
    branch_id: Optional[str] = Field(default=None, pattern=_ID)
    modality: Optional[Modality] = None
    note: Optional[str] = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _shape(self):
        if self.date_until < self.date_from:
            raise fields_error("end_before_start", "date_until is before date_from", "date_until", "date_from")
        if (self.date_until - self.date_from).days > 366:
            raise fields_error("range_too_long", "at most a year at once", "date_until", "date_from")
        if self.kind == "extra":
            missing = [f for f in ("branch_id", "modality", "start", "end") if getattr(self, f) is None]
            if missing:
                raise fields_error("required", "extra hours need branch_id, modality, start and end", *missing)
        if (self.start is None) != (self.end is None):
            raise fields_error("both_or_neither", "give both start and end, or neither for whole days",
                               "end" if self.end is None else "start")
        # an end at or before the start runs past midnight, as in templates
        if self.start and self.end and self.end == self.start:
            raise fields_error("end_equals_start", "end must differ from start", "end", "start")
        on_grid(start=self.start, end=self.end)
        return self


class DoctorLeaveIn(Strict):
    """The doctor's own leave (entered by the doctor): it applies in every clinic they work in."""
    date_from: Day
    date_until: Day
    start: Optional[WallTime] = None
    end: Optional[WallTime] = None
    note: Optional[str] = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _shape(self):
        ExceptionIn.model_validate({"kind": "leave", **self.model_dump(exclude_none=True)})
        return self


class DutyShiftIn(Strict):
    branch_id: str = Id()
    specialty: str = Field(pattern=_KIND)
    starts_at: str = Field(max_length=19, description="local date-time in the branch's zone, e.g. 2026-12-01T20:00")
    ends_at: str = Field(max_length=19)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _local(cls, v: str) -> str:
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(v) if "T" in v else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValueError("a local date-time like 2026-12-01T20:00")
        if parsed.tzinfo is not None:
            raise ValueError("give the branch's local time without an offset")
        return v


class AdminClinicsQuery(Page):
    status: ClinicStatus = "submitted"


class StaffPage(Page):
    """A page of a staff list; at most 100, and 100 unless asked (the portal shows one page)."""

    limit: int = Field(default=100, ge=1, le=100)


class DoctorRemoval(Strict):
    """What happens to the doctor's future bookings in this clinic (required when there are any)."""

    future_bookings: Optional[Literal["cancel", "keep_for_reassignment"]] = None
