"""Devices, inbox messages and their pages."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.core.model import Day, Model, fields_error
from chalicelib.identity.models import Strict

# An FCM registration token: URL-safe base64 with ':' separating the instance id (as FCM issues them:
# e.g. "fQx...:APA91b..."), 32 to 4096 characters. Anything else is refused before it reaches FCM.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-:]{32,4096}$")
APP_VERSION_RE = re.compile(r"^[0-9A-Za-z.+\-]{1,32}$")
Platform = Literal["ios", "android", "web"]
Language = Literal["ru", "en"]


def zone_name(value: str) -> str:
    from chalicelib.core.tz import TimeZoneError, zone

    try:
        zone(value)
    except TimeZoneError:
        raise ValueError("an IANA time zone such as Europe/Kaliningrad") from None
    return value


class DeviceIn(Strict):
    token: str = Field(max_length=4096)
    platform: Platform
    app_version: str = Field(max_length=32)
    language: Language
    time_zone: str = Field(max_length=64)

    @field_validator("token")
    @classmethod
    def _token(cls, v: str) -> str:
        if not TOKEN_RE.match(v):
            raise ValueError("an FCM registration token (32 to 4096 URL-safe characters)")
        return v

    @field_validator("app_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not APP_VERSION_RE.match(v):
            raise ValueError("a version such as 3.2.1")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return zone_name(v)


class DeviceView(Model):
    device_id: str
    platform: Platform
    app_version: str
    language: Language
    time_zone: str
    registered_at: str
    refreshed_at: str
    current: bool


class InboxQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class InboxMessage(Model):
    message_id: str
    kind: str
    category: str
    title: str
    text: str
    link: Optional[str] = None
    created_at: str
    read: bool


class InboxPage(Model):
    items: list[InboxMessage]
    unread: int
    next_cursor: Optional[str] = None


_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ChannelPrefs(Strict):
    push: bool = True
    sms: bool = True


class QuietHours(Strict):
    """Local hours (in ``time_zone``) when messages that can wait are held until ``end``."""
    start: str = Field(pattern=_HHMM)
    end: str = Field(pattern=_HHMM)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, v: str, info: Any) -> str:
        if info.data.get("start") == v:
            raise ValueError("quiet hours must start and end at different times")
        return v


class PreferencesIn(Strict):
    """Channels per category (the inbox always has everything); service messages keep at least one channel.
    ``quiet_hours`` null turns quiet hours off."""
    service: ChannelPrefs = Field(default_factory=ChannelPrefs)
    recall: ChannelPrefs = Field(default_factory=ChannelPrefs)
    feedback: ChannelPrefs = Field(default_factory=ChannelPrefs)
    quiet_hours: Optional[QuietHours] = None
    time_zone: Optional[str] = Field(default=None, max_length=64)

    @field_validator("service")
    @classmethod
    def _service_stays(cls, v: ChannelPrefs) -> ChannelPrefs:
        if not (v.push or v.sms):
            raise ValueError("service messages (reminders, offers, payment links) cannot be switched off entirely")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: Optional[str]) -> Optional[str]:
        return zone_name(v) if v is not None else v


class PreferencesView(Model):
    service: ChannelPrefs
    recall: ChannelPrefs
    feedback: ChannelPrefs
    quiet_hours: Optional[QuietHours] = None
    time_zone: Optional[str] = None


_ULID = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"


class FeedbackIn(Strict):
    """One answer per completed visit: NPS 0-10 ("how likely are you to recommend ...") and a comment."""
    booking_id: str = Field(pattern=_ULID)
    score: int = Field(ge=0, le=10)
    comment: Optional[str] = Field(default=None, max_length=2000)


class FeedbackQuery(Model):
    """Answers newest first; with ``date_from``/``date_to`` (both, local days in the clinic's zone, at most 366
    days) only those given in that period."""
    model_config = ConfigDict(extra="forbid")
    doctor_id: Optional[str] = Field(default=None, pattern=_ULID)
    date_from: Optional[Day] = None
    date_to: Optional[Day] = None
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _range(self) -> "FeedbackQuery":
        if (self.date_from is None) != (self.date_to is None):
            missing = "date_to" if self.date_to is None else "date_from"
            raise fields_error("missing", "a period takes both date_from and date_to", missing)
        if self.date_from is not None and self.date_to is not None:
            if self.date_to < self.date_from:
                raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
            if (self.date_to - self.date_from).days > 366:
                raise fields_error("range_too_long", "at most 366 days after date_from", "date_to")
        return self
