"""Requests, responses and values of accounts, sign-up, login and sessions."""
from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from pydantic import Field, field_validator

from chalicelib.core.model import Day, Model, Strict  # noqa: F401  (Strict: where other features found it)

ROLES = ("patient", "doctor", "clinic_admin", "platform_admin")
Role = Literal["patient", "doctor", "clinic_admin", "platform_admin"]
SecondFactor = Literal["sms", "totp"]


def normalize_phone(value: str) -> str:
    """E.164 via ``phonenumbers``; raises ValueError with a message for people."""
    import phonenumbers

    if not isinstance(value, str) or not value.strip().startswith("+"):
        raise ValueError("use the international format, starting with + and the country code")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def sms_phone(value: str) -> str:
    """A number that can take an SMS, as people type it: ``8 (916) 123-45-67`` in the default country
    (setting ``phone_default_region``) or ``+7 916 123 45 67``; E.164 out. Refused (422 naming the
    field, each with its own code): not a number, no such number, an extension, a country the platform
    does not send SMS to (setting ``sms_countries``), and every type but mobile (landline, toll-free,
    premium-rate, shared-cost, VoIP, personal, pager, UAN, voicemail, satellite and other
    non-geographic numbers). ``FIXED_LINE_OR_MOBILE`` is accepted: it is what ``phonenumbers`` says
    where the numbering plan does not tell mobiles apart (the US and Canada), and refusing it would
    refuse every mobile there; the country list decides whether such a country is served at all."""
    import phonenumbers
    from phonenumbers import PhoneNumberType as T
    from pydantic_core import PydanticCustomError

    from chalicelib.core.settings import get_settings

    s = get_settings()
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("phone_format", "enter a mobile phone number")
    try:
        parsed = phonenumbers.parse(value, s.phone_default_region)
    except phonenumbers.NumberParseException:
        raise PydanticCustomError("phone_format", "not a phone number") from None
    if parsed.extension:
        raise PydanticCustomError("phone_extension", "a mobile number has no extension")
    if not phonenumbers.is_valid_number(parsed):
        raise PydanticCustomError("phone_invalid", "not a valid phone number")
    region = phonenumbers.region_code_for_number(parsed)
    if region in (None, "001"):  # satellite (+881, +870) and other non-geographic numbers: no SMS route
        raise PydanticCustomError("phone_not_mobile", "this number cannot receive SMS; enter a mobile number")
    if region not in {c.strip().upper() for c in s.sms_countries.split(",") if c.strip()}:
        raise PydanticCustomError("phone_country_not_supported", "we do not send SMS to numbers of this country")
    if phonenumbers.number_type(parsed) not in (T.MOBILE, T.FIXED_LINE_OR_MOBILE):
        raise PydanticCustomError("phone_not_mobile", "this number cannot receive SMS; enter a mobile number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_password(value: str) -> str:
    """NIST 800-63B: 8 to 128 characters, no composition rules, not one of the most common passwords.
    The rules that need the account (phone, name, birth date) run where the account is known."""
    from pydantic_core import PydanticCustomError

    from chalicelib.identity import passwords

    found = passwords.problems(value)
    if found:
        raise PydanticCustomError(found[0], found[1])
    return value


def Name(**kw):  # noqa: N802 - reads like a type in the models below
    return Field(min_length=1, max_length=100, **kw)


def Code():  # noqa: N802
    return Field(min_length=6, max_length=16, pattern=r"^[0-9A-Za-z-]+$")


def ChallengeId():  # noqa: N802
    return Field(min_length=26, max_length=26, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")


def Password():  # noqa: N802
    return Field(min_length=1, max_length=256)


def check_birth_date(value: date) -> date:
    from chalicelib.core.clock import now

    today = now().date()
    if value > today:
        raise ValueError("cannot be in the future")
    if value.year < today.year - 130:
        raise ValueError("too far in the past")
    return value


class Consent(Strict):
    version: str = Field(min_length=1, max_length=32)
    accepted: bool

    @field_validator("accepted")
    @classmethod
    def _given(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError("the patient must accept the personal-data processing consent")
        return v


class Device(Strict):
    id: Optional[str] = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    name: Optional[str] = Field(default=None, min_length=1, max_length=100)


class SignUpRequest(Strict):
    phone: str = Field(min_length=1, max_length=32)
    password: str = Password()
    first_name: str = Name()
    last_name: str = Name()
    birth_date: Day
    consent: Consent
    language: Literal["ru", "en"] = "ru"
    # Staff sign up as doctor or clinic_admin; they must enrol an authenticator app before acting.
    role: Literal["patient", "doctor", "clinic_admin"] = "patient"

    _phone = field_validator("phone")(sms_phone)
    _password = field_validator("password")(check_password)
    _birth = field_validator("birth_date")(check_birth_date)


class ChallengeResponse(Model):
    challenge_id: str
    second_factor: SecondFactor
    expires_at: str
    resend_after: Optional[str] = None


class VerifySignUpRequest(Strict):
    challenge_id: str = ChallengeId()
    code: str = Code()
    device: Optional[Device] = None


def DeviceToken():  # noqa: N802
    return Field(default=None, min_length=1, max_length=128,
                 pattern=r"^[0-9A-HJKMNP-TV-Z]{26}\.[0-9]{1,12}\.[0-9a-f]{40}$")


class LoginRequest(Strict):
    phone: str = Field(min_length=1, max_length=32)
    password: str = Password()
    # from an earlier sign-in on this device: its own failure counter, untouched by strangers' guesses
    device_token: Optional[str] = DeviceToken()

    _phone = field_validator("phone")(sms_phone)


class VerifyLoginRequest(Strict):
    challenge_id: str = ChallengeId()
    code: str = Code()
    device: Optional[Device] = None


class TokenPair(Model):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_at: str
    session_id: str
    device_token: Optional[str] = None


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=10, max_length=200)


class PasswordResetRequest(Strict):
    phone: str = Field(min_length=1, max_length=32)

    _phone = field_validator("phone")(sms_phone)


class PasswordResetConfirm(Strict):
    challenge_id: str = ChallengeId()
    code: str = Code()
    new_password: str = Password()

    _password = field_validator("new_password")(check_password)


class Profile(Model):
    user_id: str
    role: Role
    phone: str
    first_name: str
    last_name: str
    birth_date: Optional[Day] = None
    language: Literal["ru", "en"]
    second_factor: SecondFactor
    recovery_codes_left: int
    consent: dict
    created_at: str
    version: int


class ProfilePatch(Strict):
    first_name: Optional[str] = Name(default=None)
    last_name: Optional[str] = Name(default=None)
    birth_date: Optional[Day] = None
    language: Optional[Literal["ru", "en"]] = None
    version: Optional[int] = Field(default=None, ge=1, le=2_147_483_647)

    _birth = field_validator("birth_date")(lambda v: None if v is None else check_birth_date(v))

    # language too: a stored null made every later read of the profile fail (500).
    @field_validator("first_name", "last_name", "language")
    @classmethod
    def _not_null(cls, v: Optional[str]) -> str:
        if v is None:
            raise ValueError("cannot be null")
        return v


class StepUpVerify(Strict):
    challenge_id: str = ChallengeId()
    code: str = Code()


class PasswordChange(Strict):
    new_password: str = Password()

    _password = field_validator("new_password")(check_password)


class PhoneChange(Strict):
    phone: str = Field(min_length=1, max_length=32)

    _phone = field_validator("phone")(sms_phone)


class PhoneChangeVerify(Strict):
    challenge_id: str = ChallengeId()
    code: str = Code()


class TotpEnrolment(Model):
    secret: str
    otpauth_uri: str


class TotpConfirm(Strict):
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class RecoveryCodes(Model):
    recovery_codes: list[str]


class SessionView(Model):
    session_id: str
    device_name: Optional[str] = None
    created_at: str
    last_used_at: str
    expires_at: str
    current: bool


class SessionList(Model):
    items: list[SessionView]
