"""Per-stage settings for the CDK app.

Pick a stage with ``cdk synth -c stage=dev`` (the default) or ``-c stage=prod``.
Everything that differs between stages lives here, nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageConfig:
    name: str
    # Region of every resource of the stage. Data residency: see docs/deploy.md.
    region: str
    # API Gateway stage throttling (steady requests per second, burst bucket).
    api_rate_limit: float
    api_burst_limit: int
    # SNS account-wide SMS spend cap in USD per month. AWS starts every account
    # at 1 USD; anything higher needs a quota increase (docs/deploy.md).
    sms_monthly_spend_limit_usd: int
    # CloudWatch Logs retention for API access logs and Lambda logs, in days.
    # Must be one of the values CloudWatch accepts (1, 3, 5, 7, 14, 30, 60, 90, ...).
    log_retention_days: int
    # Retention of S3 server access logs of the documents bucket, in days.
    access_log_bucket_retention_days: int
    # DynamoDB deletion protection, RETAIN on data stores, stack termination protection.
    protect_data: bool
    log_level: str
    lambda_memory_mb: int
    lambda_timeout_s: int
    # The API's own domain name (an API Gateway custom domain with an ACM certificate the
    # stack requests; docs/deploy.md). Calendar feed URLs in people's calendars and the Stripe
    # webhook carry it, so it must outlive the API: never the random execute-api host.
    api_domain: str = "api.dev.clinic.example"
    # Verified SES identity (domain) the app sends invitations from; see docs/deploy.md.
    email_domain: str = "clinic.example"
    # Versions of the per-purpose keys derived from the master key (KEY_VERSIONS); bump one
    # to rotate that key alone (runbooks in docs/security.md). A purpose not named is at 1.
    key_versions: dict[str, int] = field(default_factory=dict)
    # Reserved concurrency: each minutely job at most this many at once (a run that overruns
    # cannot pile up), and the stream consumer bounded so a poison batch cannot eat the account.
    job_reserved_concurrency: int = 2
    event_consumer_reserved_concurrency: int = 5
    # The notifications queue's consumer: at most this many at once (the event source mapping's maximum
    # concurrency, and the function's reserved concurrency at the same number, so the mapping is never
    # throttled: a throttled SQS batch counts a receive and would reach the dead-letter queue early).
    notify_consumer_concurrency: int = 2


STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        name="dev",
        region="eu-central-1",
        api_rate_limit=20,
        api_burst_limit=40,
        sms_monthly_spend_limit_usd=1,
        log_retention_days=14,
        access_log_bucket_retention_days=30,
        protect_data=False,
        log_level="DEBUG",
        lambda_memory_mb=512,
        lambda_timeout_s=29,
    ),
    "prod": StageConfig(
        name="prod",
        region="eu-central-1",
        api_rate_limit=200,
        api_burst_limit=400,
        sms_monthly_spend_limit_usd=100,
        log_retention_days=365,
        access_log_bucket_retention_days=400,
        protect_data=True,
        log_level="INFO",
        lambda_memory_mb=1024,
        lambda_timeout_s=29,
        api_domain="api.clinic.example",
        event_consumer_reserved_concurrency=20,
        notify_consumer_concurrency=10,
    ),
}


def get_stage(name: str) -> StageConfig:
    try:
        return STAGES[name]
    except KeyError:
        raise SystemExit(f"unknown stage {name!r}; use one of {sorted(STAGES)} (cdk synth -c stage=dev)") from None
