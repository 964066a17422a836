"""The one place that reads the environment.

Every knob of the backend is a field here; nothing else touches ``os.environ``.
Production values come from the Lambda environment (set by the CDK stack) and,
for secrets, from Secrets Manager by ARN; locally from the runner.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Literal, Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    stage: Literal["local", "test", "dev", "prod"] = "local"
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
    code_pepper: SecretStr = SecretStr("")
    token_signing_key_pem: SecretStr = SecretStr("")
    token_signing_kid: str = "local-1"
    token_verification_keys_json: str = ""  # {"kid": "PEM", ...} of older keys still accepted
    # In AWS the CDK stack sets these to Secrets Manager ARNs; core.secrets
    # resolves them at run time (never a clear secret in the environment).
    code_pepper_secret_arn: Optional[str] = None
    token_signing_key_secret_arn: Optional[str] = None
    stripe_secret_arn: Optional[str] = None
    firebase_secret_arn: Optional[str] = None
    documents_bucket: Optional[str] = None
    local_state_dir: Optional[str] = None  # where the local runner keeps generated keys

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

    # Requests
    max_body_bytes: int = 64 * 1024
    consent_version_current: str = "2026-11"

    # Stripe. stripe_api_base points the SDK at a local Stripe-compatible server.
    stripe_api_base: Optional[str] = None
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
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

    def validate_for_stage(self) -> None:
        if self.stage in ("dev", "prod") and "console" in (self.sms_gateway, self.email_gateway):
            raise RuntimeError("console gateways are for local use only")
        if self.stage == "prod" and self.video_gateway == "local":
            raise RuntimeError("video visits in production go through Amazon Chime SDK meetings")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    settings.validate_for_stage()
    return settings


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
