"""The clinic backend stack: the Chalice app and everything it stands on.

Design notes (the why lives here, the how-to in docs/deploy.md):
- Two customer-managed KMS keys: ``DataKey`` for patient data (table, documents,
  queues, secrets) and ``OpsKey`` for operational data (log groups, alarm topic).
  Services that only write logs never get to decrypt patient data.
- The Lambda role is owned by CDK (``manage_iam_role: false``) and lists every
  action and resource explicitly: no ``*`` action, and the only ``*`` resource is
  ``sns:Publish`` for SMS to phone numbers (an SMS target has no ARN).
- The stream consumer (``event_consumer``) is the one function with a second role: the
  app policy plus reading this table's stream and sending failed batches to its DLQ.
  No other function can read the stream.
- The notifications queue's consumer (``deliver_notifications``) has a role of its own, far
  smaller than the app's: the send records, profiles, preferences, devices, sessions and
  token owners it reads and updates (``dynamodb:LeadingKeys``), the Firebase secret, SMS to
  phone numbers, and receiving from its one queue. Its event source mapping reports partial
  batch failures; the queue's redrive policy dead-letters a message after five receives.
- The table is built from ``chalicelib/core/table.py``; keys are never retyped here.
- The authorizer has a role of its own: read session items and the token key, nothing else.
- The minutely jobs are invoked asynchronously (EventBridge): each has a dead-letter queue,
  a bounded event age and reserved concurrency, so a failing or overrunning job is seen and
  bounded. The API handler and the authorizer are invoked synchronously by API Gateway
  (throttled by the stage's limits); the stream consumer's failures go to the mapping's DLQ.
- The portal is static files in a private bucket behind CloudFront (origin access control),
  with the same strict CSP as the app serves locally (``chalicelib/meta/portal.py``), its
  ``connect-src`` widened to the API's own domain and nothing else.
- checkov reads the synthesised templates (infra/check.sh); every check it is told to skip is
  skipped on the one resource, with the reason beside it (``checkov_skip``).
"""
from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_cdk import (
    Acknowledgment,
    CfnOutput,
    CfnResource,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import (
    aws_apigateway as apigateway,
)
from aws_cdk import (
    aws_backup as backup,
)
from aws_cdk import (
    aws_certificatemanager as acm,
)
from aws_cdk import (
    aws_cloudfront as cloudfront,
)
from aws_cdk import (
    aws_cloudfront_origins as origins,
)
from aws_cdk import (
    aws_cloudwatch as cw,
)
from aws_cdk import (
    aws_cloudwatch_actions as cw_actions,
)
from aws_cdk import (
    aws_dynamodb as dynamodb,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_lambda as lambda_,
)
from aws_cdk import (
    aws_logs as logs,
)
from aws_cdk import (
    aws_s3 as s3,
)
from aws_cdk import (
    aws_secretsmanager as secretsmanager,
)
from aws_cdk import (
    aws_sns as sns,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from aws_cdk import (
    custom_resources as cr,
)
from chalice.cdk import Chalice
from constructs import Construct
from stages import StageConfig

APP_NAME = "clinic-backend"
API_GATEWAY_STAGE = "api"

# API Gateway's own answers (not the app's), rewritten as RFC 9457 problem+json.
# response type -> (HTTP status, title, stable code)
GATEWAY_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized", "unauthorized"),
    "EXPIRED_TOKEN": (401, "Unauthorized", "token_expired"),
    "ACCESS_DENIED": (403, "Forbidden", "forbidden"),
    "INVALID_SIGNATURE": (403, "Forbidden", "invalid_signature"),
    "INVALID_API_KEY": (403, "Forbidden", "invalid_api_key"),
    "WAF_FILTERED": (403, "Forbidden", "request_blocked"),
    # API Gateway answers an unknown path or method with 403 "Missing Authentication
    # Token"; to a client that is a plain 404.
    "MISSING_AUTHENTICATION_TOKEN": (404, "Not Found", "not_found"),
    "RESOURCE_NOT_FOUND": (404, "Not Found", "not_found"),
    "BAD_REQUEST_BODY": (400, "Bad Request", "bad_request"),
    "BAD_REQUEST_PARAMETERS": (400, "Bad Request", "bad_request"),
    "REQUEST_TOO_LARGE": (413, "Content Too Large", "request_too_large"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type", "unsupported_media_type"),
    "THROTTLED": (429, "Too Many Requests", "rate_limited"),
    "QUOTA_EXCEEDED": (429, "Too Many Requests", "quota_exceeded"),
    "DEFAULT_4XX": (400, "Bad Request", "bad_request"),
    "AUTHORIZER_FAILURE": (500, "Internal Server Error", "internal_error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal Server Error", "internal_error"),
    "API_CONFIGURATION_ERROR": (500, "Internal Server Error", "internal_error"),
    "INTEGRATION_FAILURE": (502, "Bad Gateway", "upstream_failure"),
    "INTEGRATION_TIMEOUT": (504, "Gateway Timeout", "upstream_timeout"),
    "DEFAULT_5XX": (500, "Internal Server Error", "internal_error"),
}

# One JSON object per request; no path parameters, query strings, bodies or headers
# (they can carry phone numbers or medical details): the resource *template* only.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTimeEpoch",
        "ip": "$context.identity.sourceIp",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationStatus": "$context.integrationStatus",
        "errorType": "$context.error.responseType",
        "authorizerError": "$context.authorizer.error",
        "userAgent": "$context.identity.userAgent",
    },
    separators=(",", ":"),
)

SECRETS = {
    # construct id -> (env var, description)
    "MasterKey": ("MASTER_KEY_SECRET_ARN", "master key every per-purpose HMAC key is derived from (HKDF)"),
    "TokenSigningKey": ("TOKEN_SIGNING_KEY_SECRET_ARN", "EC P-256 private key (PEM) that signs access tokens"),
    "TokenVerificationKeys": ("TOKEN_VERIFICATION_KEYS_SECRET_ARN",
                              "public keys (PEM) that verify access tokens, JSON {kid: pem}: all the authorizer reads"),
    "Stripe": ("STRIPE_SECRET_ARN", "Stripe keys as JSON: secret_key, publishable_key, webhook_secret"),
    "Firebase": ("FIREBASE_SECRET_ARN", "Firebase service account JSON for FCM push"),
}

# The Chalice function fed by the table's stream (chalicelib/meta/jobs.py, @lambda_function
# name "event_consumer") and what of the stream reaches it: new event items only.
EVENT_CONSUMER = "EventConsumer"
EVENT_STREAM_DLQ = "event-stream"
EVENT_STREAM_FILTER = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event"]}}}}

# The Chalice functions EventBridge invokes asynchronously on a schedule (@schedule: every minute or five).
# The Chalice function that delivers notifications (chalicelib/notify/jobs.py, @on_sqs_message
# name "deliver_notifications"); the stack maps its own queue to it, not the local one Chalice names.
NOTIFY_CONSUMER = "DeliverNotifications"
NOTIFICATIONS = "notifications"
# The items the notify consumer reads or changes, by partition key prefix (chalicelib/notify/store.py,
# identity/store.py): send records, profiles + preferences + devices + inbox, sessions, token owners.
NOTIFY_CONSUMER_KEYS = ("NOTIFYMSG#*", "USER#*", "SESSION#*", "FCMTOKEN#*")

SCHEDULED_JOBS = ("ExpireHolds", "DrainEvents", "SendReminders", "ReleaseHeld", "ExpireCashback",
                  "SnapshotSchedules", "SendCare")
JOBS_DLQ = "jobs"
DEPLOY_TASKS_DLQ = "deploy-tasks"
AUTHORIZER = "TokenAuthorizer"
# The Stripe secret's shape; the stack creates it with empty fields for a human to fill in.
STRIPE_SECRET_TEMPLATE = {"secret_key": "", "publishable_key": "", "webhook_secret": ""}
# The webhook route the app serves (chalicelib/clinics/api.py); tests/infra holds it to the app.
STRIPE_WEBHOOK_PATH = "/webhooks/stripe"

QUEUES = {
    # construct id -> (queue name suffix, env var)
    "Notifications": ("notifications", "NOTIFICATIONS_QUEUE_URL"),
    "PaymentsEvents": ("payments-events", "PAYMENTS_EVENTS_QUEUE_URL"),
}


def load_table_definition(repo_root: Path) -> ModuleType:
    """Import chalicelib/core/table.py by path (it has no dependencies).

    Importing it as ``chalicelib.core.table`` would run the package ``__init__``
    files, which may pull in the app's dependencies; this venv does not have them.
    """
    path = repo_root / "chalicelib" / "core" / "table.py"
    spec = importlib.util.spec_from_file_location("clinic_table_definition", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the table definition from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ack(scope: Construct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def checkov_skip(resource: Any, check_id: str, reason: str) -> None:
    """Tell checkov to skip one check on one resource, with the reason (template Metadata)."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    meta = cfn.get_metadata("checkov") or {"skip": []}
    meta["skip"].append({"id": check_id, "comment": reason})
    cfn.add_metadata("checkov", meta)


def local_portal_csp(repo_root: Path) -> str:
    """The CSP the app serves the portal with locally (``CSP`` in chalicelib/meta/portal.py),
    read from the source so the two cannot drift (that module imports the app)."""
    tree = ast.parse((repo_root / "chalicelib" / "meta" / "portal.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CSP" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise RuntimeError("chalicelib/meta/portal.py defines no CSP")


def portal_csp(repo_root: Path, api_origin: str) -> str:
    """The local CSP, with the API's origin the one addition to ``connect-src``."""
    csp = local_portal_csp(repo_root)
    if "connect-src 'self'" not in csp:
        raise RuntimeError("the portal CSP has no connect-src 'self' to widen to the API")
    return csp.replace("connect-src 'self'", f"connect-src 'self' {api_origin}")


class ClinicBackendStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        repo_root: Path,
        chalice_source_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=stage.protect_data, **kwargs)
        self.stage = stage
        data_removal = RemovalPolicy.RETAIN if stage.protect_data else RemovalPolicy.DESTROY

        # ---- keys -------------------------------------------------------------------------
        self.data_key = kms.Key(
            self,
            "DataKey",
            description=f"{APP_NAME} {stage.name}: patient data (table, documents, queues, secrets)",
            enable_key_rotation=True,
            removal_policy=data_removal,
            pending_window=Duration.days(30 if stage.protect_data else 7),
        )
        self.ops_key = kms.Key(
            self,
            "OpsKey",
            description=f"{APP_NAME} {stage.name}: operational data (log groups, alarm topic)",
            enable_key_rotation=True,
            removal_policy=data_removal,
            pending_window=Duration.days(30 if stage.protect_data else 7),
        )
        self._allow_logs_and_alarms_on_ops_key()
        # Medical records (chalicelib/records): envelope encryption in the app and SSE-KMS of documents.
        self.records_key = kms.Key(
            self,
            "RecordsKey",
            description=f"{APP_NAME} {stage.name}: medical records (card data keys, documents)",
            enable_key_rotation=True,
            removal_policy=data_removal,
            pending_window=Duration.days(30 if stage.protect_data else 7),
        )

        # ---- data -------------------------------------------------------------------------
        self.table_module = load_table_definition(repo_root)
        self.table = self._table(data_removal)
        self._backups(data_removal)
        self.log_bucket, self.documents_bucket = self._buckets(data_removal)
        self.queues, self.dlqs = self._queues()
        self.secrets = self._secrets(data_removal)
        self.api_origin = f"https://{stage.api_domain}"
        self.portal_bucket, self.portal = self._portal(repo_root, data_removal)
        self._records_documents()

        # ---- the app ----------------------------------------------------------------------
        self.lambda_role = iam.Role(
            self,
            "LambdaRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{APP_NAME} {stage.name}: every Lambda function of the Chalice app",
        )
        self.chalice = Chalice(
            self,
            "ChaliceApp",
            source_dir=str(chalice_source_dir),
            stage_config=self._chalice_stage_config(),
        )
        self.functions = self._serverless_resources("AWS::Serverless::Function")
        self.rest_api = self.chalice.get_resource("RestAPI")
        self._lambda_log_groups()
        self._lambda_policy()
        self._event_stream_consumer()
        self._notifications_consumer()
        self._authorizer_role()
        self._scheduled_jobs()
        self._synchronous_functions()
        self._api_gateway()
        self._api_domain()

        # ---- SMS, alarms ------------------------------------------------------------------
        self._sms_settings()
        self.alarm_topic = self._alarms()

        self._outputs()

    # ======================================================================================
    def _allow_logs_and_alarms_on_ops_key(self) -> None:
        self.ops_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                         "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"
                    }
                },
            )
        )
        self.ops_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

    # ---- DynamoDB ------------------------------------------------------------------------
    def _table(self, removal: RemovalPolicy) -> dynamodb.Table:
        t = self.table_module
        params = t.create_table_params("unused")
        known = {"TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"}
        unknown = set(params) - known
        if unknown:
            # A new table feature in table.py must be mapped here, not silently dropped.
            raise RuntimeError(f"table.py defines {sorted(unknown)}; teach infra/clinic_stack.py about them")
        if params["BillingMode"] != "PAY_PER_REQUEST":
            raise RuntimeError("table.py must stay on-demand (PAY_PER_REQUEST)")
        types = {a["AttributeName"]: a["AttributeType"] for a in params["AttributeDefinitions"]}
        cdk_type = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}

        def key(schema: list[dict[str, str]], kind: str) -> dynamodb.Attribute | None:
            names = [k["AttributeName"] for k in schema if k["KeyType"] == kind]
            return dynamodb.Attribute(name=names[0], type=cdk_type[types[names[0]]]) if names else None

        table = dynamodb.Table(
            self,
            "Table",
            partition_key=key(params["KeySchema"], "HASH"),
            sort_key=key(params["KeySchema"], "RANGE"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            time_to_live_attribute=t.TTL_ATTRIBUTE,
            deletion_protection=self.stage.protect_data,
            removal_policy=removal,
        )
        for gsi in params.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            if projection["ProjectionType"] != "ALL":
                raise RuntimeError("only ALL projections are mapped; extend infra/clinic_stack.py")
            table.add_global_secondary_index(
                index_name=gsi["IndexName"],
                partition_key=key(gsi["KeySchema"], "HASH"),
                sort_key=key(gsi["KeySchema"], "RANGE"),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    def _backups(self, removal: RemovalPolicy) -> None:
        """AWS Backup copies of the table, beside its 35 days of point-in-time recovery.

        PITR lives and dies with the table; vault copies survive a dropped or corrupted
        table and give restore points older than 35 days (prod keeps monthly ones for 5 years).
        """
        vault = backup.BackupVault(self, "BackupVault", encryption_key=self.data_key, removal_policy=removal)
        if self.stage.protect_data:
            plan = backup.BackupPlan.daily_weekly_monthly5_year_retention(self, "BackupPlan", vault)
        else:
            plan = backup.BackupPlan.daily35_day_retention(self, "BackupPlan", vault)
        selection = plan.add_selection(
            "Table", resources=[backup.BackupResource.from_dynamo_db_table(self.table)]
        )
        ack(selection, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]",
            "The AWS Backup service role uses AWS's own service-role policy, which AWS keeps in step with the "
            "backup APIs; it is assumable only by backup.amazonaws.com.")

    # ---- S3 --------------------------------------------------------------------------------
    def _buckets(self, removal: RemovalPolicy) -> tuple[s3.Bucket, s3.Bucket]:
        log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access log delivery writes only to SSE-S3 buckets (not SSE-KMS).
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(self.stage.access_log_bucket_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
        )
        checkov_skip(log_bucket, "CKV_AWS_18",
                     "This is the access-log bucket: logging it into itself would loop, and into another bucket "
                     "would need a third with the same question.")
        ack(log_bucket, "HIPAA.Security-S3DefaultEncryptionKMS",
            "S3 server access log delivery supports only SSE-S3 on the target bucket, not SSE-KMS; "
            "the logs hold request metadata, not document contents.")
        ack(log_bucket, "HIPAA.Security-S3BucketReplicationEnabled",
            "Access logs are kept for a limited time for audit; cross-region replication would copy them out of "
            "the data-residency region for no recovery benefit.")

        documents = s3.Bucket(
            self,
            "DocumentsBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="documents/",
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1))
            ],
            removal_policy=removal,
        )
        ack(documents, "HIPAA.Security-S3BucketReplicationEnabled",
            "Cross-region replication would copy medical documents out of the data-residency region; durability "
            "comes from S3's multi-AZ storage plus versioning, and deletion is protected by RETAIN in prod.")
        return log_bucket, documents

    def _records_documents(self) -> None:
        """Documents of the medical card: uploaded by the apps with a presigned POST pinned to SSE-KMS under
        the records key; anything else is refused by the bucket itself."""
        self.documents_bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
            allowed_origins=[f"https://{self.portal.distribution_domain_name}"],
            allowed_headers=["*"],
            max_age=600,
        )
        self.documents_bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="DenyPutsNotUnderTheRecordsKey",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[self.documents_bucket.arn_for_objects("records/*")],
            conditions={"StringNotEqualsIfExists": {
                "s3:x-amz-server-side-encryption-aws-kms-key-id": self.records_key.key_arn}},
        ))
        self.documents_bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="DenyPutsWithoutKms",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[self.documents_bucket.arn_for_objects("records/*")],
            conditions={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        ))

    # ---- SQS -------------------------------------------------------------------------------
    def _dead_letter_queue(self, construct_id: str, suffix: str) -> sqs.Queue:
        """A dead-letter queue: encrypted with the data key, TLS only, kept 14 days."""
        return sqs.Queue(
            self,
            construct_id,
            queue_name=f"{APP_NAME}-{self.stage.name}-{suffix}-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.data_key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

    def _queues(self) -> tuple[dict[str, sqs.Queue], dict[str, sqs.Queue]]:
        queues: dict[str, sqs.Queue] = {}
        dlqs: dict[str, sqs.Queue] = {}
        # Six times the function timeout, as AWS advises for Lambda event sources.
        visibility = Duration.seconds(6 * self.stage.lambda_timeout_s)
        for cid, (suffix, _env) in QUEUES.items():
            dlq = self._dead_letter_queue(f"{cid}DeadLetterQueue", suffix)
            queue = sqs.Queue(
                self,
                f"{cid}Queue",
                queue_name=f"{APP_NAME}-{self.stage.name}-{suffix}",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=self.data_key,
                data_key_reuse=Duration.minutes(5),
                enforce_ssl=True,
                visibility_timeout=visibility,
                retention_period=Duration.days(4),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=5),
            )
            queues[suffix] = queue
            dlqs[suffix] = dlq
        return queues, dlqs

    # ---- Secrets Manager -------------------------------------------------------------------
    def _secrets(self, removal: RemovalPolicy) -> dict[str, secretsmanager.Secret]:
        secrets: dict[str, secretsmanager.Secret] = {}
        for cid, (env, description) in SECRETS.items():
            if cid == "MasterKey":
                # A random 64-character master key is generated at creation: nothing to fill in.
                generate = secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True)
            elif cid == "Stripe":
                # The JSON shape with empty fields (plus a random "placeholder" field): the app
                # refuses it with a message naming each empty field until a human fills them in.
                generate = secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps(STRIPE_SECRET_TEMPLATE), generate_string_key="placeholder",
                    password_length=16, exclude_punctuation=True)
            else:
                # A random placeholder that no parser accepts as a PEM or JSON: the app fails
                # loudly until a human puts the real value (docs/deploy.md).
                generate = secretsmanager.SecretStringGenerator(password_length=32, exclude_punctuation=True)
            secret = secretsmanager.Secret(
                self,
                f"{cid}Secret",
                secret_name=f"{APP_NAME}/{self.stage.name}/{_kebab(cid)}",
                description=f"{APP_NAME} {self.stage.name}: {description}",
                encryption_key=self.data_key,
                generate_secret_string=generate,
                removal_policy=removal,
            )
            reason = {
                "MasterKey": "Every per-purpose key is derived from the master key; a purpose is rotated by bumping "
                             "its version (KEY_VERSIONS), and replacing the master itself changes every derived "
                             "key at once, so it is done by hand after a compromise (docs/security.md runbooks).",
                "TokenSigningKey": "Rotation of the token signing key needs a key-id overlap window that the app "
                                   "manages (old key kept for verification); it is rotated by hand with openssl, "
                                   "see docs/deploy.md. A rotation Lambda would have to know that protocol.",
                "TokenVerificationKeys": "Public keys, not a secret: they change with the signing key, by hand, in "
                                         "the same runbook (docs/deploy.md); kept in Secrets Manager so the "
                                         "authorizer reads them without the private key.",
                "Stripe": "Stripe API keys and webhook secrets are issued by Stripe's dashboard; Secrets Manager "
                          "cannot rotate them, so they are rolled in Stripe and stored by hand.",
                "Firebase": "Firebase service account keys are issued by Google Cloud IAM; Secrets Manager cannot "
                            "rotate them, so they are rotated in Google Cloud and stored by hand.",
            }[cid]
            ack(secret, "AwsSolutions-SMG4", reason)
            ack(secret, "HIPAA.Security-SecretsManagerRotationEnabled", reason)
            secrets[env] = secret
        return secrets

    # ---- Chalice -----------------------------------------------------------------------------
    def _chalice_stage_config(self) -> dict[str, Any]:
        env = {
            "STAGE": self.stage.name,
            "SERVICE_NAME": APP_NAME,
            "TABLE_NAME": self.table.table_name,
            "SMS_GATEWAY": "sns",
            # Push through firebase-admin with the service account in FIREBASE_SECRET_ARN (never the console).
            "PUSH_GATEWAY": "fcm",
            "EMAIL_GATEWAY": "ses",
            "EMAIL_SENDER": f"no-reply@{self.stage.email_domain}",
            "VIDEO_GATEWAY": "chime",
            "DOCUMENTS_BUCKET": self.documents_bucket.bucket_name,
            "RECORDS_KMS_KEY_ID": self.records_key.key_arn,
            "LOG_LEVEL": self.stage.log_level,
            # Calendar feed URLs and other links the app hands out: the API's own domain.
            "PUBLIC_BASE_URL": self.api_origin,
            # The one origin the API answers CORS for, and where payout onboarding returns to.
            "PORTAL_BASE_URL": f"https://{self.portal.distribution_domain_name}",
        }
        if self.stage.key_versions:
            env["KEY_VERSIONS"] = json.dumps(self.stage.key_versions, sort_keys=True, separators=(",", ":"))
        for suffix, (_cid, env_name) in {v[0]: (k, v[1]) for k, v in QUEUES.items()}.items():
            env[env_name] = self.queues[suffix].queue_url
        for env_name, secret in self.secrets.items():
            # Only the ARN: the app fetches the value at run time.
            env[env_name] = secret.secret_arn
        return {
            "app_name": APP_NAME,
            "api_gateway_stage": API_GATEWAY_STAGE,
            # Regional endpoint: no CloudFront edge in front, traffic stays in the stage's region.
            "api_gateway_endpoint_type": "REGIONAL",
            "manage_iam_role": False,
            "iam_role_arn": self.lambda_role.role_arn,
            "autogen_policy": False,
            "automatic_layer": False,
            "xray": False,
            "lambda_memory_size": self.stage.lambda_memory_mb,
            "lambda_timeout": self.stage.lambda_timeout_s,
            "environment_variables": env,
        }

    def _sam_logical_ids(self, resource_type: str) -> list[str]:
        """Logical ids of one resource type in the template `chalice package` wrote."""
        sam_json = Path(self.chalice._sam_package_dir) / "sam.json"  # noqa: SLF001 (no public accessor)
        resources = json.loads(sam_json.read_text())["Resources"]
        return sorted(k for k, v in resources.items() if v["Type"] == resource_type)

    def _serverless_resources(self, resource_type: str) -> dict[str, CfnResource]:
        return {lid: self.chalice.get_resource(lid) for lid in self._sam_logical_ids(resource_type)}

    def _lambda_log_groups(self) -> None:
        """One KMS-encrypted log group with retention per Chalice function.

        Created here rather than with Chalice's ``log_retention_in_days``: chalice 1.34's
        packager names the API handler's log group after ``ApiHandler`` while the
        function is renamed ``APIHandler``, so that template does not import.
        """
        self.lambda_log_groups: list[logs.LogGroup] = []
        self.log_group_of: dict[str, logs.LogGroup] = {}
        for lid, fn in self.functions.items():
            group = logs.LogGroup(
                self,
                f"{lid}Logs",
                log_group_name=f"/aws/lambda/{fn.ref}",
                encryption_key=self.ops_key,
                retention=_retention(self.stage.log_retention_days),
                removal_policy=RemovalPolicy.RETAIN if self.stage.protect_data else RemovalPolicy.DESTROY,
            )
            self.lambda_log_groups.append(group)
            self.log_group_of[lid] = group

    def _lambda_policy(self) -> None:
        table = self.table
        t = self.table_module
        index_arns = [f"{table.table_arn}/index/{name}" for name in t.GLOBAL_INDEXES]
        statements = [
            iam.PolicyStatement(
                sid="TableItems",
                # No Scan, no table management: the app reads by key and writes with conditions.
                actions=[
                    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
                ],
                resources=[table.table_arn],
            ),
            iam.PolicyStatement(sid="TableIndexes", actions=["dynamodb:Query"], resources=index_arns),
            iam.PolicyStatement(
                sid="Documents",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion"],
                resources=[self.documents_bucket.arn_for_objects("*")],
            ),
            # The API and the jobs only put messages on the notifications queue (SendMessage covers
            # SendMessageBatch); receiving and deleting are the consumer's own role's, and no code of the
            # app reads the payments-events queue.
            iam.PolicyStatement(
                sid="NotificationsQueueSend",
                actions=["sqs:SendMessage"],
                resources=[self.queues[QUEUES["Notifications"][0]].queue_arn],
            ),
            iam.PolicyStatement(
                sid="Secrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[s.secret_arn for s in self.secrets.values()],
            ),
            iam.PolicyStatement(
                sid="DataKeyViaServices",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[self.data_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"{svc}.{self.region}.amazonaws.com"
                            for svc in ("dynamodb", "s3", "sqs", "secretsmanager")
                        ]
                    }
                },
            ),
            iam.PolicyStatement(
                sid="RecordsDataKeys",
                # Card data keys: only with the records' encryption context (patient, section), never without.
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.records_key.key_arn],
                conditions={
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["patient", "section"]},
                    "Null": {"kms:EncryptionContextKeys": "false"},
                },
            ),
            iam.PolicyStatement(
                sid="RecordsKeyViaS3",
                # SSE-KMS of documents: presigned uploads and downloads run with this role's credentials.
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.records_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="SmsToPhoneNumbers",
                actions=["sns:Publish"],
                # Publishing an SMS straight to a phone number has no resource ARN.
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="NoPublishToTopics",
                effect=iam.Effect.DENY,
                actions=["sns:Publish"],
                # ...but the role must not publish to any topic, only to phone numbers.
                resources=[f"arn:{self.partition}:sns:*:*:*"],
            ),
            iam.PolicyStatement(
                sid="InvitationEmail",
                actions=["ses:SendEmail"],
                resources=[f"arn:{self.partition}:ses:{self.region}:{self.account}:identity/{self.stage.email_domain}"],
                conditions={"StringEquals": {"ses:FromAddress": f"no-reply@{self.stage.email_domain}"}},
            ),
            iam.PolicyStatement(
                sid="VideoVisits",
                actions=["chime:CreateMeeting", "chime:CreateAttendee"],
                resources=[f"arn:{self.partition}:chime:{self.region}:{self.account}:meeting/*"],
            ),
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[lg.log_group_arn for lg in self.lambda_log_groups],
            ),
        ]
        policy = iam.ManagedPolicy(
            self, "LambdaPolicy", statements=statements, roles=[self.lambda_role],
            description=f"{APP_NAME} {self.stage.name}: least privilege of the Chalice functions",
        )
        ack(policy, "AwsSolutions-IAM5[Resource::*]",
            "sns:Publish to a phone number (SMS one-time codes) has no resource ARN, so AWS requires Resource '*'; "
            "a Deny on every topic ARN in the same policy limits it to direct SMS.")
        ack(policy, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:chime:{self.region}:{self.account}:meeting/*]",
            "Chime SDK meeting ids are created at run time, one per video visit; the grant is limited to "
            "creating meetings and attendees in this account and region.")
        ack(policy, f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(self.documents_bucket.node.default_child)}.Arn>/*]",
            "Document object keys are generated at run time (ULIDs); the grant is limited to objects of this "
            "one bucket and to get/put/delete.")
        checkov_skip(policy, "CKV_AWS_111",
                     "The one unconstrained write is sns:Publish to phone numbers (SMS has no resource ARN); a Deny "
                     "on every topic ARN in the same policy limits it to direct SMS. Every other write names its "
                     "table, bucket, queue or log group.")
        self.lambda_policy = policy

    # ---- the outbox's stream consumer ------------------------------------------------------
    def _event_stream_consumer(self) -> None:
        """Feed new event items from the table's stream to ``event_consumer``.

        The filter drops every other write before Lambda is invoked (no cost, no cold start).
        A failing batch is split (bisect) and retried a bounded number of times; what still
        fails is recorded in an encrypted dead-letter queue (the record *metadata*: shard and
        sequence numbers, never the item) and alarms. Nothing is lost either way: an event
        stays pending in the outbox index and the scheduled ``drain_events`` retries it.
        """
        if EVENT_CONSUMER not in self.functions:
            raise RuntimeError(f"the Chalice app has no {EVENT_CONSUMER} function (chalicelib/meta/jobs.py)")
        consumer = self.functions[EVENT_CONSUMER]
        dlq = self._dead_letter_queue("EventStreamDeadLetterQueue", EVENT_STREAM_DLQ)
        ack(dlq, "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the on-failure destination of the table-stream event "
            "source mapping (Lambda writes failed batch metadata here). It is not an SQS redrive target, which "
            "is all the rule can see.")
        self.dlqs[EVENT_STREAM_DLQ] = dlq

        role = iam.Role(
            self,
            "EventConsumerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{APP_NAME} {self.stage.name}: the table-stream consumer of the event outbox",
        )
        # The handlers it runs need what the app needs; the stream is for it alone.
        self.lambda_policy.attach_to_role(role)
        stream_policy = iam.ManagedPolicy(
            self,
            "EventConsumerStreamPolicy",
            roles=[role],
            description=f"{APP_NAME} {self.stage.name}: read the table's stream, record failed batches",
            statements=[
                iam.PolicyStatement(
                    sid="ReadTheTableStream",
                    actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                             "dynamodb:ListStreams"],
                    resources=[self.table.table_stream_arn],
                ),
                iam.PolicyStatement(
                    sid="FailedBatchesToDeadLetterQueue",
                    actions=["sqs:SendMessage"],
                    resources=[dlq.queue_arn],
                ),
            ],
        )
        consumer.add_property_override("Role", role.role_arn)
        self.event_consumer_role = role

        mapping = lambda_.CfnEventSourceMapping(
            self,
            "EventStreamMapping",
            function_name=consumer.ref,
            event_source_arn=self.table.table_stream_arn,
            # LATEST: events written before the mapping existed are the scheduled drain's.
            starting_position="LATEST",
            batch_size=10,
            maximum_batching_window_in_seconds=1,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=3,
            # Past an hour the drain has long retried the event; do not block the shard for it.
            maximum_record_age_in_seconds=3600,
            parallelization_factor=1,
            filter_criteria=lambda_.CfnEventSourceMapping.FilterCriteriaProperty(
                filters=[lambda_.CfnEventSourceMapping.FilterProperty(
                    pattern=json.dumps(EVENT_STREAM_FILTER, separators=(",", ":"))
                )]
            ),
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(destination=dlq.queue_arn)
            ),
        )
        # Lambda checks the role's stream and queue permissions when it creates the mapping.
        mapping.node.add_dependency(stream_policy)
        mapping.node.add_dependency(self.lambda_policy)
        self.event_stream_mapping = mapping

    # ---- the notifications queue's consumer ---------------------------------------------------
    def _notifications_consumer(self) -> None:
        """Feed the notifications queue to ``deliver_notifications`` with partial batch responses.

        Chalice declares an SQS event on a local queue name; it is dropped here and the mapping is made on the
        stack's own queue, so the one mapping is this (and it can wait for the role's policy). The function
        answers ``batchItemFailures``: only the records that failed come back, each after the delay it set
        (``ChangeMessageVisibility``: 60 s doubling to 15 min, or FCM's Retry-After), and after the fifth
        receive the queue's redrive policy moves a message to its dead-letter queue, where an alarm sees it.
        """
        if NOTIFY_CONSUMER not in self.functions:
            raise RuntimeError(f"the Chalice app has no {NOTIFY_CONSUMER} function (chalicelib/notify/jobs.py)")
        fn = self.functions[NOTIFY_CONSUMER]
        queue = self.queues[NOTIFICATIONS]
        role = iam.Role(
            self,
            "NotifyConsumerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{APP_NAME} {self.stage.name}: the notifications queue's consumer (push and SMS)",
        )
        policy = iam.ManagedPolicy(
            self,
            "NotifyConsumerPolicy",
            roles=[role],
            description=f"{APP_NAME} {self.stage.name}: deliver notifications and nothing else",
            statements=[
                iam.PolicyStatement(
                    sid="NotifyItems",
                    # claim / hold / mark a send record; read preferences, devices, sessions, token owners
                    # and (for an SMS) the profile; remove devices FCM refused or whose session ended
                    actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem",
                             "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
                    resources=[self.table.table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(NOTIFY_CONSUMER_KEYS)}},
                ),
                iam.PolicyStatement(
                    sid="NotificationsQueue",
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                             "sqs:ChangeMessageVisibility"],
                    resources=[queue.queue_arn],
                ),
                iam.PolicyStatement(sid="FirebaseServiceAccount", actions=["secretsmanager:GetSecretValue"],
                                    resources=[self.secrets["FIREBASE_SECRET_ARN"].secret_arn]),
                iam.PolicyStatement(
                    sid="DataKeyViaServices",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[self.data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [
                        f"{svc}.{self.region}.amazonaws.com" for svc in ("dynamodb", "sqs", "secretsmanager")]}},
                ),
                iam.PolicyStatement(sid="SmsToPhoneNumbers", actions=["sns:Publish"], resources=["*"]),
                iam.PolicyStatement(sid="NoPublishToTopics", effect=iam.Effect.DENY, actions=["sns:Publish"],
                                    resources=[f"arn:{self.partition}:sns:*:*:*"]),
                iam.PolicyStatement(sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                    resources=[self.log_group_of[NOTIFY_CONSUMER].log_group_arn]),
            ],
        )
        ack(policy, "AwsSolutions-IAM5[Resource::*]",
            "sns:Publish to a phone number (the SMS fallback of reminders, offers, payment links) has no resource "
            "ARN, so AWS requires Resource '*'; a Deny on every topic ARN in the same policy limits it to SMS.")
        checkov_skip(policy, "CKV_AWS_111",
                     "The one unconstrained write is sns:Publish to phone numbers (SMS has no resource ARN); a Deny "
                     "on every topic ARN in the same policy limits it to direct SMS. Table writes are limited to "
                     "the notify items by dynamodb:LeadingKeys.")
        fn.add_property_override("Role", role.role_arn)
        fn.add_property_deletion_override("Events")  # Chalice's mapping names the local queue
        concurrency = self.stage.notify_consumer_concurrency
        fn.add_property_override("ReservedConcurrentExecutions", concurrency)
        checkov_skip(fn, "CKV_AWS_116",
                     "Invoked synchronously by its SQS event source mapping, which a function DLQ cannot serve; the "
                     f"notifications queue's redrive policy moves a message to the {NOTIFICATIONS}-dlq after its "
                     "fifth receive, and an alarm watches that queue's depth.")
        mapping = lambda_.CfnEventSourceMapping(
            self,
            "NotificationsQueueMapping",
            function_name=fn.ref,
            event_source_arn=queue.queue_arn,
            batch_size=10,
            maximum_batching_window_in_seconds=1,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=lambda_.CfnEventSourceMapping.ScalingConfigProperty(maximum_concurrency=concurrency),
        )
        # Lambda checks the role's queue permissions when it creates the mapping.
        mapping.node.add_dependency(policy)
        self.notify_consumer_role = role
        self.notifications_mapping = mapping

    # ---- API Gateway ----------------------------------------------------------------------
    def _api_gateway(self) -> None:
        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            encryption_key=self.ops_key,
            retention=_retention(self.stage.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if self.stage.protect_data else RemovalPolicy.DESTROY,
        )
        self.api_access_log_group = access_logs
        api = self.rest_api
        api.add_property_override("Name", f"{APP_NAME}-{self.stage.name}")
        api.add_property_override(
            "AccessLogSetting", {"DestinationArn": access_logs.log_group_arn, "Format": ACCESS_LOG_FORMAT}
        )
        api.add_property_override(
            "MethodSettings",
            [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": self.stage.api_rate_limit,
                    "ThrottlingBurstLimit": self.stage.api_burst_limit,
                    "MetricsEnabled": True,
                    "DataTraceEnabled": False,
                }
            ],
        )
        api.add_property_override("TracingEnabled", False)
        checkov_skip(api, "CKV_AWS_73",
                     "X-Ray is off by decision: its SDK costs cold-start time (docs/benchmarks.md) and each request "
                     "is already logged with a correlation id; the access log records latency per call.")
        checkov_skip(api, "CKV_AWS_120",
                     "Every answer is private to its caller or must be fresh (Cache-Control: no-store); a stage "
                     "cache would serve one patient's data to another or stale slots.")
        # Inside the OpenAPI body, so SAM's deployment hash changes with them and a
        # change reaches the live stage (a separate AWS::ApiGateway::GatewayResponse
        # is only picked up by the next deployment).
        portal_origin = Fn.join("", ["'https://", self.portal.distribution_domain_name, "'"])
        api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses",
                                  gateway_responses(cors_origin=portal_origin))

    # ---- the authorizer's own role ----------------------------------------------------------
    def _authorizer_role(self) -> None:
        """The token authorizer verifies a JWT and reads its session item: nothing else.

        It needs the token verification keys (public keys; never the private signing key) and GetItem on
        ``SESSION#...`` items only (``dynamodb:LeadingKeys``); it cannot read the stream, any
        other item, index or secret, write anything, send SMS or touch documents.
        """
        if AUTHORIZER not in self.functions:
            raise RuntimeError(f"the Chalice app has no {AUTHORIZER} function (chalicelib/identity/authorizer.py)")
        role = iam.Role(
            self,
            "AuthorizerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{APP_NAME} {self.stage.name}: the API's token authorizer (reads sessions only)",
        )
        verification_keys = self.secrets["TOKEN_VERIFICATION_KEYS_SECRET_ARN"]
        iam.ManagedPolicy(
            self,
            "AuthorizerPolicy",
            roles=[role],
            description=f"{APP_NAME} {self.stage.name}: read session items and the token verification keys",
            statements=[
                iam.PolicyStatement(
                    sid="ReadSessionItems",
                    actions=["dynamodb:GetItem"],
                    resources=[self.table.table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SESSION#*"]}},
                ),
                iam.PolicyStatement(sid="TokenVerificationKeys", actions=["secretsmanager:GetSecretValue"],
                                    resources=[verification_keys.secret_arn]),
                iam.PolicyStatement(
                    sid="DataKeyViaServices",
                    actions=["kms:Decrypt"],
                    resources=[self.data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": [
                        f"{svc}.{self.region}.amazonaws.com" for svc in ("dynamodb", "secretsmanager")]}},
                ),
                iam.PolicyStatement(sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                    resources=[self.log_group_of[AUTHORIZER].log_group_arn]),
            ],
        )
        self.functions[AUTHORIZER].add_property_override("Role", role.role_arn)
        self.authorizer_role = role

    # ---- the minutely jobs: asynchronous, so dead-lettered and bounded ------------------------
    def _scheduled_jobs(self) -> None:
        missing = [j for j in SCHEDULED_JOBS if j not in self.functions]
        if missing:
            raise RuntimeError(f"the Chalice app has no scheduled functions {missing}; update SCHEDULED_JOBS")
        dlq = self._dead_letter_queue("JobsDeadLetterQueue", JOBS_DLQ)
        ack(dlq, "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the DLQ of the scheduled Lambda functions' asynchronous "
            "invocations. It is not an SQS redrive target, which is all the rule can see.")
        self.dlqs[JOBS_DLQ] = dlq
        send = iam.ManagedPolicy(
            self,
            "JobsDeadLetterPolicy",
            roles=[self.lambda_role],
            description=f"{APP_NAME} {self.stage.name}: failed job invocations to the jobs dead-letter queue",
            statements=[iam.PolicyStatement(sid="FailedInvocationsToDeadLetterQueue", actions=["sqs:SendMessage"],
                                            resources=[dlq.queue_arn])],
        )
        for job in SCHEDULED_JOBS:
            fn = self.functions[job]
            fn.add_property_override("DeadLetterQueue", {"Type": "SQS", "TargetArn": dlq.queue_arn})
            # A job's event is stale after two minutes (the next run, in one or five, does the work);
            # retried twice on error, then dead-lettered, where an alarm sees it.
            fn.add_property_override("EventInvokeConfig", {"MaximumEventAgeInSeconds": 120,
                                                           "MaximumRetryAttempts": 2})
            fn.add_property_override("ReservedConcurrentExecutions", self.stage.job_reserved_concurrency)
            fn.node.add_dependency(send)
        consumer = self.functions[EVENT_CONSUMER]
        consumer.add_property_override("ReservedConcurrentExecutions", self.stage.event_consumer_reserved_concurrency)
        checkov_skip(consumer, "CKV_AWS_116",
                     "Invoked synchronously by its DynamoDB stream event source mapping, which is what a function "
                     "DLQ cannot serve; failed batches go to the mapping's on-failure destination "
                     f"({EVENT_STREAM_DLQ}-dlq), and events stay pending for the scheduled drain.")

    def _synchronous_functions(self) -> None:
        """Checks that do not apply to a function API Gateway invokes synchronously, or to any."""
        for lid in ("APIHandler", AUTHORIZER):
            fn = self.functions[lid]
            checkov_skip(fn, "CKV_AWS_116",
                         "Invoked synchronously by API Gateway: the caller gets the error, there is no asynchronous "
                         "event to dead-letter (a DLQ applies to asynchronous invocations only).")
            checkov_skip(fn, "CKV_AWS_115",
                         "Bounded by the API stage's throttling (stages.py api_rate_limit/api_burst_limit), which "
                         "answers 429 problem+json; reserving concurrency here would also take it from the "
                         "account's unreserved pool that the jobs and the stream consumer draw on.")
        for fn in self.functions.values():
            checkov_skip(fn, "CKV_AWS_117",
                         "No VPC: the function reaches only AWS APIs (DynamoDB, S3, SQS, SNS, SES, Secrets Manager, "
                         "Chime) over TLS with IAM, and Stripe over the internet; a VPC would add NAT or endpoints "
                         "and cold-start cost and protect nothing it holds.")
            checkov_skip(fn, "CKV_AWS_173",
                         "The environment holds only names, URLs and Secrets Manager ARNs, never a secret value "
                         "(tests/infra holds it); Lambda encrypts it at rest with its own key.")

    # ---- the API's own domain ---------------------------------------------------------------
    def _api_domain(self) -> None:
        """An API Gateway custom domain: links people keep (calendar feeds, the Stripe webhook)
        must not carry the random execute-api host, which changes if the API is ever recreated."""
        cert = acm.Certificate(self, "ApiCertificate", domain_name=self.stage.api_domain,
                               validation=acm.CertificateValidation.from_dns())
        domain = apigateway.CfnDomainName(
            self,
            "ApiDomain",
            domain_name=self.stage.api_domain,
            regional_certificate_arn=cert.certificate_arn,
            endpoint_configuration=apigateway.CfnDomainName.EndpointConfigurationProperty(types=["REGIONAL"]),
            security_policy="TLS_1_2",
        )
        mapping = apigateway.CfnBasePathMapping(self, "ApiDomainMapping", domain_name=domain.ref,
                                                rest_api_id=self.rest_api.ref, stage=API_GATEWAY_STAGE)
        # The stage is created by the SAM transform from RestAPI; the mapping must wait for it.
        mapping.add_override("DependsOn", [f"RestAPI{API_GATEWAY_STAGE}Stage"])
        self.api_domain_name = domain

    # ---- the portal ---------------------------------------------------------------------------
    def _portal(self, repo_root: Path, removal: RemovalPolicy) -> tuple[s3.Bucket, cloudfront.Distribution]:
        """The clinic portal: private bucket, CloudFront with origin access control, strict headers."""
        bucket = s3.Bucket(
            self,
            "PortalBucket",
            # Static, public-by-design files (HTML, JS, CSS): SSE-S3 at rest. SSE-KMS would need the
            # key policy to admit CloudFront and buys nothing for files every visitor downloads.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="portal/",
            lifecycle_rules=[s3.LifecycleRule(id="expire-old-portal-versions",
                                              noncurrent_version_expiration=Duration.days(30))],
            removal_policy=removal,
        )
        ack(bucket, "HIPAA.Security-S3DefaultEncryptionKMS",
            "The portal bucket holds the portal's static HTML, JS and CSS, which every visitor downloads; it holds "
            "no patient data. SSE-S3 keeps CloudFront's origin access control simple.")
        ack(bucket, "HIPAA.Security-S3BucketReplicationEnabled",
            "The portal's files are rebuilt from the repository on every deploy; replication adds nothing.")
        checkov_skip(bucket, "CKV_AWS_145",
                     "Static portal files (no patient data), SSE-S3; SSE-KMS would need CloudFront in the key policy.")
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "PortalHeaders",
            comment=f"{APP_NAME} {self.stage.name}: the portal's CSP and security headers (as served locally)",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=portal_csp(repo_root, self.api_origin), override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(custom_headers=[
                cloudfront.ResponseCustomHeader(header="Cross-Origin-Opener-Policy", value="same-origin",
                                                override=True),
                cloudfront.ResponseCustomHeader(header="Permissions-Policy",
                                                value="camera=(), microphone=(), geolocation=()", override=True),
            ]),
        )
        distribution = cloudfront.Distribution(
            self,
            "PortalDistribution",
            comment=f"{APP_NAME} {self.stage.name}: clinic portal",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        why_waf = ("The portal is static files with no server-side logic behind CloudFront; every request that "
                   "matters goes to the API, which API Gateway throttles per stage. A WAF web ACL (about $6 a "
                   "month plus rules) can be attached later without code changes.")
        why_logs = ("CloudFront standard logs need an ACL-enabled bucket, which this stack does not create "
                    "(every bucket enforces bucket-owner ownership); the API's access logs record every call.")
        why_geo = "Clinics and patients sign in from anywhere (travel, telemedicine); no country is blocked."
        why_cert = ("Served on the default *.cloudfront.net certificate until a portal domain is chosen "
                    "(docs/deploy.md), whose TLS policy CloudFront fixes; with a custom domain set "
                    "minimum_protocol_version TLSv1.2_2021 (browsers negotiate TLS 1.2+ today anyway).")
        ack(distribution, "AwsSolutions-CFR1", why_geo)
        ack(distribution, "AwsSolutions-CFR2", why_waf)
        ack(distribution, "AwsSolutions-CFR3", why_logs)
        ack(distribution, "AwsSolutions-CFR4", why_cert)
        checkov_skip(distribution, "CKV_AWS_68", why_waf)
        checkov_skip(distribution, "CKV_AWS_86", why_logs)
        checkov_skip(distribution, "CKV_AWS_374", why_geo)
        checkov_skip(distribution, "CKV_AWS_174", why_cert)
        checkov_skip(distribution, "CKV_AWS_310",
                     "One S3 origin in the stage's region; S3's own durability is the failover for static files.")
        return bucket, distribution

    # ---- SMS ---------------------------------------------------------------------------------
    def _sms_settings(self) -> None:
        log_group = logs.LogGroup(
            self,
            "SmsSettingsLogs",
            encryption_key=self.ops_key,
            retention=_retention(self.stage.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "SmsSettingsRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{APP_NAME} {self.stage.name}: sets the account's SNS SMS attributes at deploy time",
        )
        policy = iam.ManagedPolicy(
            self,
            "SmsSettingsPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="SetSmsAttributes",
                    actions=["sns:SetSMSAttributes", "sns:GetSMSAttributes"],
                    resources=["*"],  # account-level settings have no ARN
                ),
                iam.PolicyStatement(
                    sid="OwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
            ],
        )
        ack(policy, "AwsSolutions-IAM5[Resource::*]",
            "sns:SetSMSAttributes/GetSMSAttributes act on account-level SMS settings, which have no resource ARN.")
        # CloudFormation invokes the custom resource provider asynchronously: what fails past
        # Lambda's retries lands in a dead-letter queue (an alarm watches it) as well as failing the deploy.
        self.deploy_tasks_dlq = self._dead_letter_queue("DeployTasksDeadLetterQueue", DEPLOY_TASKS_DLQ)
        ack(self.deploy_tasks_dlq, "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue (of the deploy-time custom resource provider).")
        self.dlqs[DEPLOY_TASKS_DLQ] = self.deploy_tasks_dlq
        policy.add_statements(iam.PolicyStatement(sid="FailedInvocationsToDeadLetterQueue",
                                                  actions=["sqs:SendMessage"],
                                                  resources=[self.deploy_tasks_dlq.queue_arn]))
        attributes = {
            "DefaultSMSType": "Transactional",
            "MonthlySpendLimit": str(self.stage.sms_monthly_spend_limit_usd),
        }
        call = cr.AwsSdkCall(
            service="SNS",
            action="setSMSAttributes",
            parameters={"attributes": attributes},
            physical_resource_id=cr.PhysicalResourceId.of(f"{APP_NAME}-{self.stage.name}-sms-attributes"),
        )
        sms = cr.AwsCustomResource(
            self,
            "SmsSettings",
            on_create=call,
            on_update=call,
            role=role,
            log_group=log_group,
            install_latest_aws_sdk=False,
            timeout=Duration.minutes(1),
        )
        sms.node.add_dependency(policy)
        self._ack_custom_resource_provider()

    def _ack_custom_resource_provider(self) -> None:
        """The singleton Lambda that AwsCustomResource brings runs only during deployments."""
        provider = self.node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
        if provider is None:
            raise RuntimeError("AwsCustomResource provider function not found; its construct id changed")
        why_deploy_only = "runs once per deployment (CloudFormation custom resource), never on user traffic"
        why_concurrency = ("The AwsCustomResource provider " + why_deploy_only
                           + "; reserved concurrency would only waste account capacity.")
        why_vpc = ("The AwsCustomResource provider only calls the SNS control-plane API and touches no patient "
                   "data; a VPC would need NAT or endpoints.")
        cfn_provider = provider.node.default_child
        cfn_provider.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.deploy_tasks_dlq.queue_arn)
        for rule, reason in {
            "HIPAA.Security-LambdaConcurrency": why_concurrency,
            "HIPAA.Security-LambdaInsideVPC": why_vpc,
        }.items():
            ack(provider, rule, reason)
        checkov_skip(cfn_provider, "CKV_AWS_115", why_concurrency)
        checkov_skip(cfn_provider, "CKV_AWS_117", why_vpc)
        checkov_skip(cfn_provider, "CKV_AWS_173",
                     "The provider's environment holds no value of ours (CDK sets none); Lambda encrypts it at rest.")

    # ---- alarms --------------------------------------------------------------------------------
    def _alarms(self) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{APP_NAME} {self.stage.name} alarms",
            master_key=self.ops_key,
            enforce_ssl=True,
        )
        action = cw_actions.SnsAction(topic)
        period = Duration.minutes(5)

        def alarm(cid: str, metric: cw.IMetric, description: str, threshold: float = 0) -> cw.Alarm:
            a = cw.Alarm(
                self,
                cid,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            return a

        api_dims = {"ApiName": f"{APP_NAME}-{self.stage.name}", "Stage": API_GATEWAY_STAGE}
        alarm(
            "Api5xxAlarm",
            cw.Metric(namespace="AWS/ApiGateway", metric_name="5XXError", dimensions_map=api_dims,
                      statistic="Sum", period=period),
            "The API answered 5xx: every 5xx is a bug.",
        )
        for logical_id, fn in self.functions.items():
            dims = {"FunctionName": fn.ref}
            alarm(
                f"{logical_id}ErrorsAlarm",
                cw.Metric(namespace="AWS/Lambda", metric_name="Errors", dimensions_map=dims, statistic="Sum",
                          period=period),
                f"Lambda {logical_id} raised errors.",
            )
            alarm(
                f"{logical_id}ThrottlesAlarm",
                cw.Metric(namespace="AWS/Lambda", metric_name="Throttles", dimensions_map=dims, statistic="Sum",
                          period=period),
                f"Lambda {logical_id} was throttled.",
            )
        alarm(
            "TableThrottlesAlarm",
            cw.MathExpression(
                expression="r + w",
                using_metrics={
                    "r": self.table.metric("ReadThrottleEvents", statistic="Sum", period=period),
                    "w": self.table.metric("WriteThrottleEvents", statistic="Sum", period=period),
                },
                period=period,
                label="Read + write throttle events",
            ),
            "DynamoDB throttled reads or writes on the table.",
        )
        alarm(
            "EventStreamIteratorAgeAlarm",
            cw.Metric(namespace="AWS/Lambda", metric_name="IteratorAge",
                      dimensions_map={"FunctionName": self.functions[EVENT_CONSUMER].ref},
                      statistic="Maximum", period=period),
            "The event stream consumer is more than 5 minutes behind the table's stream.",
            threshold=5 * 60 * 1000,  # milliseconds
        )
        self._analytics_alarms(topic, period, alarm)
        for suffix, dlq in self.dlqs.items():
            alarm(
                f"{_camel(suffix)}DlqDepthAlarm",
                dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=period),
                f"Messages are waiting in the {suffix} dead-letter queue.",
            )
        return topic

    def _analytics_alarms(self, topic: sns.Topic, period: Duration, alarm: Any) -> None:
        """Alarms on the operational metrics analytics' event handlers write (EMF, namespace ``ClinicBackend``,
        dimensions stage and service: chalicelib/analytics/jobs.py)."""
        dims = {"stage": self.stage.name, "service": "clinic-backend"}

        def ops(name: str, minutes: int = 5) -> cw.Metric:
            return cw.Metric(namespace="ClinicBackend", metric_name=name, dimensions_map=dims, statistic="Sum",
                             period=Duration.minutes(minutes))

        # a sudden drop in bookings: the hourly count below the band anomaly detection learned (daily and weekly
        # patterns, so a quiet night is no alarm), for three hours; no bookings at all counts as zero
        cw.CfnAlarm(
            self, "BookingsDropAlarm",
            alarm_description="Bookings fell well below their usual level for three hours.",
            comparison_operator="LessThanLowerThreshold", evaluation_periods=3, threshold_metric_id="band",
            treat_missing_data="breaching",
            metrics=[
                cw.CfnAlarm.MetricDataQueryProperty(
                    id="m", return_data=False,
                    metric_stat=cw.CfnAlarm.MetricStatProperty(
                        metric=cw.CfnAlarm.MetricProperty(
                            namespace="ClinicBackend", metric_name="BookingsCreated",
                            dimensions=[cw.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in dims.items()]),
                        period=3600, stat="Sum")),
                cw.CfnAlarm.MetricDataQueryProperty(id="f", expression="FILL(m, 0)", return_data=True,
                                                    label="Bookings an hour"),
                cw.CfnAlarm.MetricDataQueryProperty(id="band", expression="ANOMALY_DETECTION_BAND(f, 3)",
                                                    return_data=True, label="Usual range"),
            ],
            alarm_actions=[topic.topic_arn],
        )
        # a rise in failed pushes: more than a fifth of the messages failed, counting at least ten failures
        alarm(
            "NotificationsFailedAlarm",
            cw.MathExpression(expression="IF(failed > 10, failed / (sent + failed), 0)",
                              using_metrics={"failed": ops("NotificationsFailed"), "sent": ops("NotificationsSent")},
                              period=period, label="Share of failed notifications"),
            "More than 20 % of notifications failed (at least ten) in five minutes.",
            threshold=0.2,
        )

    # ---- outputs -------------------------------------------------------------------------------
    def _outputs(self) -> None:
        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "DocumentsBucketName", value=self.documents_bucket.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(self, "ApiAccessLogGroup", value=self.api_access_log_group.log_group_name)
        for env_name, secret in self.secrets.items():
            CfnOutput(self, _camel(env_name.lower().replace("_", "-")), value=secret.secret_arn)
        for suffix, q in self.queues.items():
            CfnOutput(self, f"{_camel(suffix)}QueueUrl", value=q.queue_url)
        CfnOutput(
            self,
            "StripeWebhookUrl",
            description="The endpoint to register in Stripe (Developers > Webhooks); its signing secret goes into "
                        "the Stripe secret as webhook_secret",
            value=f"{self.api_origin}{STRIPE_WEBHOOK_PATH}",
        )
        CfnOutput(self, "ApiUrl", description="The API's own domain (PUBLIC_BASE_URL)", value=self.api_origin)
        CfnOutput(self, "ApiDomainTarget", description=f"Point a CNAME for {self.stage.api_domain} at this name",
                  value=self.api_domain_name.attr_regional_domain_name)
        CfnOutput(self, "ExecuteApiUrl", description="The API's execute-api address (for smoke tests only)",
                  value=f"https://{self.rest_api.ref}.execute-api.{self.region}.{self.url_suffix}/{API_GATEWAY_STAGE}")
        CfnOutput(self, "PortalUrl", description="The clinic portal (PORTAL_BASE_URL)",
                  value=f"https://{self.portal.distribution_domain_name}")
        CfnOutput(self, "PortalBucketName", value=self.portal_bucket.bucket_name)
        CfnOutput(self, "PortalDistributionId", value=self.portal.distribution_id)


def gateway_responses(cors_origin: Any = None) -> dict[str, Any]:
    """API Gateway's own answers as problem+json. ``cors_origin`` (the portal's origin) lets the
    portal's script read them too (a 429 from throttling, a 401 without a token): API Gateway
    cannot vary a gateway response by the request's Origin, so it names the portal's origin,
    which no other origin's browser accepts."""
    out: dict[str, Any] = {}
    for response_type, (status, title, code) in GATEWAY_PROBLEMS.items():
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "code": code}, separators=(",", ":")
        )
        headers = {"gatewayresponse.header.Content-Type": "'application/problem+json'"}
        if status == 429:
            headers["gatewayresponse.header.Retry-After"] = "'1'"
        if cors_origin is not None:
            headers["gatewayresponse.header.Access-Control-Allow-Origin"] = cors_origin
            headers["gatewayresponse.header.Vary"] = "'Origin'"
        out[response_type] = {
            "statusCode": str(status),
            "responseParameters": headers,
            # API Gateway picks the template by the request's Accept header and falls back
            # to application/json; both carry the same problem document.
            "responseTemplates": {"application/json": body, "application/problem+json": body},
        }
    return out


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"{days} is not one of the log retention values {sorted(_RETENTION)}") from None


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("_", "-").split("-"))


def _kebab(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch.isupper() and i:
            out.append("-")
        out.append(ch.lower())
    return "".join(out)
