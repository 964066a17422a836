"""The one place that reads the environment.

Every knob of the backend is a field here; nothing else touches ``os.environ``.
Production values come from the Lambda environment (set by the CDK stack) and,
for secrets, from Secrets Manager by ARN; locally from the runner.
"""
import json
import os
import re
from functools import lru_cache
from typing import Any, ClassVar, Literal, Optional, Union, get_args, get_origin

# Plain Python, no pydantic: every request builds the settings first, and the app's most common first
# request (the public catalogue) then needs no pydantic at all (cold start, bench/coldstart.py). The
# types a setting may have are the few ``_coerce`` reads; a field of another type fails at import.

# The stages that run in AWS: there every setting below must come from the CDK stack, and
# nothing local (console gateways, generated keys, emulator endpoints) is accepted.
AWS_STAGES = ("dev", "prod")

# Purposes of the keys derived from the master key (core.crypto); each has its own version
# in ``key_versions`` so one can be rotated without touching the others (docs/security.md).
KEY_PURPOSES = ("login_codes", "refresh_tokens", "recovery_codes", "invitation_codes", "rate_limits",
                "cursors", "calendar_feeds", "video_tokens", "device_tokens")

# Settings a deployed stage cannot run without: the stack sets every one (tests/infra holds it).
REQUIRED_IN_AWS = ("stage", "table_name", "master_key_secret_arn", "token_signing_key_secret_arn",
                   "token_verification_keys_secret_arn", "stripe_secret_arn", "public_base_url", "portal_base_url",
                   "firebase_secret_arn", "notifications_queue_url")


class SettingsError(RuntimeError):
    """The environment cannot run this stage; the message says what to set."""


class SecretStr:
    """A secret value that never shows in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class FieldSpec:
    """What a setting accepts beyond its type: a default (or a factory), bounds, the variable's name."""

    __slots__ = ("name", "annotation", "default", "default_factory", "validation_alias", "ge", "le")

    def __init__(self, default: Any = None, *, default_factory: Any = None, validation_alias: Optional[str] = None,
                 ge: Optional[float] = None, le: Optional[float] = None) -> None:
        self.name, self.annotation = "", None
        self.default, self.default_factory, self.validation_alias = default, default_factory, validation_alias
        self.ge, self.le = ge, le

    @property
    def env(self) -> str:
        """The environment variable that sets this field."""
        return (self.validation_alias or self.name).upper()

    def is_required(self) -> bool:
        return self.default is _REQUIRED

    def initial(self) -> Any:
        return self.default_factory() if self.default_factory else self.default


def Field(default: Any = None, **options: Any) -> Any:  # noqa: N802  (declared like pydantic's Field)
    """A setting's default and options (typed ``Any`` so ``x: int = Field(...)`` reads as an int)."""
    return FieldSpec(default, **options)


_REQUIRED = object()
_INT = re.compile(r"^[+-]?[0-9]+$")


class _Invalid(ValueError):
    pass


def _coerce(annotation: Any, raw: Any) -> Any:
    """One value from the environment (a string; JSON for dicts) as ``annotation`` says, or ``_Invalid``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return None if raw is None else _coerce(inner[0], raw)
    if origin is Literal:
        if raw not in args:
            raise _Invalid(f"one of {', '.join(map(str, args))}")
        return raw
    if origin is dict:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict):
            raise _Invalid("a JSON object")
        key_t, value_t = args
        return {_coerce(key_t, k): _coerce(value_t, v) for k, v in value.items()}
    if annotation is str:
        if not isinstance(raw, str):
            raise _Invalid("a string")
        return raw
    if annotation is SecretStr:
        return raw if isinstance(raw, SecretStr) else SecretStr(_coerce(str, raw))
    if annotation is int:
        if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and _INT.match(raw.strip()))):
            raise _Invalid("a whole number")
        return int(raw)
    if annotation is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise _Invalid("a number") from None
    raise TypeError(f"a setting of type {annotation!r} is not supported")


class _SettingsMeta(type):
    """Collects the annotated class attributes of ``Settings`` as its fields, in order."""

    def __new__(mcs, name: str, bases: tuple, namespace: dict[str, Any]):
        fields: dict[str, FieldSpec] = {}
        for field_name, annotation in namespace.get("__annotations__", {}).items():
            if get_origin(annotation) is ClassVar:
                continue
            value = namespace.get(field_name, _REQUIRED)
            spec = value if isinstance(value, FieldSpec) else FieldSpec(value)
            spec.name, spec.annotation = field_name, annotation
            if spec.default is not _REQUIRED and spec.default is not None and not spec.default_factory:
                _coerce(annotation, spec.default)  # a default of the wrong type fails at import
            fields[field_name] = spec
            namespace.pop(field_name, None)
        namespace["model_fields"] = fields
        return super().__new__(mcs, name, bases, namespace)


class Settings(metaclass=_SettingsMeta):
    """Built from the environment by ``from_environment`` (names case-insensitive, a field's name or its
    alias; dict fields as JSON) and ``model_validate``, which names every variable it cannot read."""

    model_fields: ClassVar[dict[str, FieldSpec]]

    # No default: a Lambda whose STAGE is missing must not start as "local".
    stage: Literal["local", "test", "dev", "prod"]
    service_name: str = "clinic-backend"
    aws_region: str = Field(default="eu-central-1", validation_alias="AWS_REGION")

    # DynamoDB
    table_name: str = "clinic-backend"
    dynamodb_endpoint: Optional[str] = None

    # Other AWS endpoints (moto server locally); None means the real AWS endpoint.
    aws_endpoint: Optional[str] = None

    # SMS: "sns" publishes through Amazon SNS; "console" prints codes to the
    # local console (never allowed in dev/prod, see validate_for_stage).
    sms_gateway: Literal["sns", "console"] = "sns"
    sms_sender_id: str = "Clinic"

    # Secrets. In AWS these hold Secrets Manager ARNs resolved at run time
    # (see core.secrets); locally they may hold the value itself.
    # The master key every per-purpose key is derived from (HKDF, core.crypto).
    master_key: SecretStr = SecretStr("")
    token_signing_key_pem: SecretStr = SecretStr("")
    token_signing_kid: str = "local-1"
    token_verification_keys_json: str = ""  # {"kid": "PEM", ...} of older keys still accepted
    # In AWS the CDK stack sets these to Secrets Manager ARNs; core.secrets
    # resolves them at run time (never a clear secret in the environment).
    master_key_secret_arn: Optional[str] = None
    token_signing_key_secret_arn: Optional[str] = None
    # the public keys that verify access tokens, JSON {kid: PEM}, a secret of their own: the authorizer reads
    # these and never the private key (locally the public key is derived from the signing key)
    token_verification_keys_secret_arn: Optional[str] = None
    # JSON: {"secret_key": "sk_...", "publishable_key": "pk_...", "webhook_secret": "whsec_..."}
    stripe_secret_arn: Optional[str] = None
    firebase_secret_arn: Optional[str] = None
    documents_bucket: Optional[str] = None
    local_state_dir: Optional[str] = None  # where the local runner keeps generated keys
    # Version of each derived key, e.g. {"calendar_feeds": 2}; a purpose not named is at 1.
    key_versions: dict[str, int] = Field(default_factory=dict)

    # Queues the stack creates. Notifications: set, a message is delivered (push, SMS) by the queue's consumer
    # (notify/jobs.py deliver_notifications); unset (tests, one-off scripts), in the process that accepted it.
    notifications_queue_url: Optional[str] = None
    payments_events_queue_url: Optional[str] = None

    # Tokens and sessions
    token_issuer: str = "clinic-backend"
    token_audience: str = "clinic-app"
    access_token_ttl_s: int = 15 * 60
    refresh_absolute_ttl_s: int = 30 * 24 * 3600
    refresh_idle_ttl_s: int = 14 * 24 * 3600
    step_up_ttl_s: int = 5 * 60

    # One-time codes and their sending limits
    code_ttl_s: int = 5 * 60
    code_max_attempts: int = 5
    sms_resend_cooldown_s: int = 60
    sms_per_phone_per_hour: int = 5
    sms_per_client_per_hour: int = 20
    login_failures_per_window: int = 10
    login_failure_window_s: int = 15 * 60
    # Sign-in limits (docs/security.md, "Limits"): wrong passwords per (account, client) above; per
    # account from clients it has not seen, per client address across accounts, per known device.
    login_failures_per_account_window: int = 40
    login_failures_per_address_window: int = 100
    login_failures_per_device_window: int = 10
    device_token_ttl_s: int = 365 * 24 * 3600
    # Wrong second-factor codes per account across challenges: free ones, then a delay doubling from
    # second_factor_first_delay_s up to second_factor_max_delay_s, and at second_factor_max_failures
    # consecutive ones the account needs recovery (a password reset by SMS).
    second_factor_free_failures: int = 5
    second_factor_first_delay_s: int = 30
    second_factor_max_delay_s: int = 3600
    second_factor_max_failures: int = 100

    # Phones and SMS texts: numbers as people type them in phone_default_region; SMS only to these
    # countries (ISO 3166 codes, comma-separated); every SMS names app_name, and code SMS end with
    # "@<app_domain> #<code>" for WebOTP, the Android SMS Retriever and iOS one-time-code autofill.
    phone_default_region: str = "RU"
    sms_countries: str = "RU"
    app_name: str = "Clinic"
    app_domain: str = "clinic.example"

    # Requests
    max_body_bytes: int = 64 * 1024
    consent_version_current: str = "2026-11"

    # Stripe. stripe_api_base points the SDK at a local Stripe-compatible server.
    stripe_api_base: Optional[str] = None
    stripe_timeout_s: float = 8.0  # one call to Stripe; a Lambda has 29 s for the whole request
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
    # The platform's fee on each online payment, in basis points of the amount (500 = 5 %), kept by the
    # platform as Stripe's application_fee_amount; the rest goes to the clinic's connected account.
    payments_platform_fee_bp: int = Field(default=500, ge=0, le=5000)
    public_base_url: str = "http://127.0.0.1:8000"  # the API's origin (calendar feeds, video links)
    portal_base_url: Optional[str] = None  # the portal's origin when it is not served by the API (S3)

    # E-mail: "console" prints locally; "ses" sends through Amazon SES.
    email_gateway: Literal["ses", "console"] = "ses"
    email_sender: str = "no-reply@clinic.example"

    invitation_ttl_s: int = 7 * 24 * 3600

    # Video rooms: "chime" (Amazon Chime SDK meetings) in AWS, "local" elsewhere.
    video_gateway: Literal["chime", "local"] = "local"

    # Push: "fcm" sends through firebase-admin (service account from firebase_secret_arn); "local" prints.
    # fcm_endpoint + fcm_static_token point the real SDK at a local fake FCM HTTP v1 server (tests, make run).
    push_gateway: Literal["fcm", "local"] = "local"
    fcm_project_id: str = ""
    fcm_endpoint: Optional[str] = None
    fcm_static_token: SecretStr = SecretStr("")
    fcm_timeout_s: int = 10
    # Notifications: reminders before a visit (hours; a clinic may set its own), quiet hours in the
    # person's zone (local hours, start inclusive, end exclusive), how long a device token lives unrefreshed.
    reminder_hours: str = "24,2"
    quiet_hours_start: int = 22
    quiet_hours_end: int = 8
    device_stale_days: int = 270

    log_level: str = "INFO"

    # Medical records. The KMS key that wraps the data keys of card entries (an id, ARN or alias);
    # None is allowed only in local and test, where the gateway makes a key on moto on first use.
    records_kms_key_id: Optional[str] = None
    records_data_key_ttl_s: int = 5 * 60  # how long a plaintext data key stays cached in a container
    records_data_key_max_uses: int = 1000  # and for how many encryptions at most
    records_grant_max_days: int = 365  # the longest a patient may open the card for
    records_entries_per_section_max: int = 500  # a card section refuses more
    records_document_max_bytes: int = 25 * 1024 * 1024  # one uploaded document at most
    records_upload_ttl_s: int = 5 * 60  # how long a presigned upload (POST policy) stays valid
    records_download_ttl_s: int = 5 * 60  # how long a presigned download link stays valid

    def __init__(self, **values: Any) -> None:
        for name, spec in self.model_fields.items():
            setattr(self, name, values[name] if name in values else spec.initial())

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> "Settings":
        """Settings from ``data`` keyed by variable name (``from_environment``); unknown keys are ignored."""
        values: dict[str, Any] = {}
        wrong: list[str] = []
        for name, spec in cls.model_fields.items():
            key = spec.validation_alias or name
            if key not in data:
                if spec.is_required():
                    wrong.append(spec.env)
                continue
            try:
                value = _coerce(spec.annotation, data[key])
                if (spec.ge is not None and value < spec.ge) or (spec.le is not None and value > spec.le):
                    raise _Invalid(f"between {spec.ge} and {spec.le}")
            except (_Invalid, ValueError):
                wrong.append(spec.env)
                continue
            values[name] = value
        if wrong:
            raise _Invalid(", ".join(wrong))
        return cls(**values)

    def __repr__(self) -> str:
        return f"Settings(stage={getattr(self, 'stage', None)!r})"

    def validate_for_stage(self) -> None:
        """Fail closed: refuse to start a deployed stage on anything local or missing."""
        unknown = sorted(set(self.key_versions) - set(KEY_PURPOSES))
        if unknown or any(v < 1 for v in self.key_versions.values()):
            raise SettingsError(f"KEY_VERSIONS names unknown purposes {unknown} or a version below 1; "
                                f"purposes are {list(KEY_PURPOSES)}")
        if self.stage not in AWS_STAGES:
            return
        problems: list[str] = []
        for name in REQUIRED_IN_AWS:
            if not getattr(self, name):
                problems.append(f"{name.upper()} is not set")
        if "console" in (self.sms_gateway, self.email_gateway):
            problems.append("console gateways (SMS_GATEWAY/EMAIL_GATEWAY=console) are for local use only")
        if self.stage == "prod" and self.video_gateway == "local":
            problems.append("video visits in production go through Amazon Chime SDK meetings (VIDEO_GATEWAY=chime)")
        for name in ("master_key", "token_signing_key_pem", "stripe_secret_key", "stripe_webhook_secret"):
            if getattr(self, name).get_secret_value():
                problems.append(f"{name.upper()} holds a clear secret in the environment; "
                                f"set {_arn_setting(name).upper()} to a Secrets Manager ARN instead")
        if self.push_gateway != "fcm":
            problems.append(f"PUSH_GATEWAY={self.push_gateway} prints pushes to a console; a deployed stage pushes "
                            "through FCM (PUSH_GATEWAY=fcm with FIREBASE_SECRET_ARN)")
        if self.fcm_static_token.get_secret_value():
            problems.append("FCM_STATIC_TOKEN is for a local fake FCM server only; set FIREBASE_SECRET_ARN")
        for name in ("dynamodb_endpoint", "aws_endpoint", "stripe_api_base", "local_state_dir", "fcm_endpoint"):
            if getattr(self, name):
                problems.append(f"{name.upper()} points at a local emulator or folder")
        for name in ("public_base_url", "portal_base_url"):
            value = getattr(self, name) or ""
            if value and not value.startswith("https://"):
                problems.append(f"{name.upper()} must be an https:// origin, not {value!r}")
        if problems:
            raise SettingsError(f"stage {self.stage} cannot start: " + "; ".join(problems))


def _arn_setting(secret_field: str) -> str:
    return {"master_key": "master_key_secret_arn", "token_signing_key_pem": "token_signing_key_secret_arn"}.get(
        secret_field, "stripe_secret_arn")


def from_environment(environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The fields the environment sets, keyed as the model reads them."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    data: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = env.get(field.env)
        if raw is not None:
            data[field.validation_alias or name] = raw  # a dict field's JSON is read by model_validate
    return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        settings = Settings.model_validate(from_environment())  # the environment supplies STAGE
    except _Invalid as exc:
        wrong = str(exc)
        raise SettingsError(f"the environment does not configure this backend: {wrong} missing or invalid "
                            "(STAGE is one of local, test, dev, prod; the CDK stack sets it in AWS)") from None
    settings.validate_for_stage()
    return settings


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
