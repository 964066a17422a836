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
- The table is built from ``chalicelib/core/table.py``; keys are never retyped here.
"""
from __future__ import annotations

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
    RemovalPolicy,
    Stack,
    Validations,
    aws_backup as backup,
    aws_cloudwatch as cw,
    aws_cloudwatch_actions as cw_actions,
    aws_dynamodb as dynamodb,
    aws_iam as iam,
    aws_kms as kms,
    aws_lambda as lambda_,
    aws_logs as logs,
    aws_s3 as s3,
    aws_secretsmanager as secretsmanager,
    aws_sns as sns,
    aws_sqs as sqs,
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
    "CodePepper": ("CODE_PEPPER_SECRET_ARN", "HMAC key (pepper) for one-time login codes"),
    "TokenSigningKey": ("TOKEN_SIGNING_KEY_SECRET_ARN", "EC P-256 private key (PEM) that signs access tokens"),
    "Stripe": ("STRIPE_SECRET_ARN", "Stripe keys as JSON: secret_key, publishable_key, webhook_secret"),
    "Firebase": ("FIREBASE_SECRET_ARN", "Firebase service account JSON for FCM push"),
}

# The Chalice function fed by the table's stream (chalicelib/meta/jobs.py, @lambda_function
# name "event_consumer") and what of the stream reaches it: new event items only.
EVENT_CONSUMER = "EventConsumer"
EVENT_STREAM_DLQ = "event-stream"
EVENT_STREAM_FILTER = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["event"]}}}}

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

        # ---- data -------------------------------------------------------------------------
        self.table_module = load_table_definition(repo_root)
        self.table = self._table(data_removal)
        self._backups(data_removal)
        self.log_bucket, self.documents_bucket = self._buckets(data_removal)
        self.queues, self.dlqs = self._queues()
        self.secrets = self._secrets(data_removal)

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
        self._api_gateway()

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
            if cid == "CodePepper":
                # A random 64-character HMAC key is generated at creation: nothing to fill in.
                generate = secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True)
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
                "CodePepper": "Rotating the pepper invalidates every one-time code in flight; it is rotated by hand "
                              "(put-secret-value) in a quiet window, as docs/deploy.md describes.",
                "TokenSigningKey": "Rotation of the token signing key needs a key-id overlap window that the app "
                                   "manages (old key kept for verification); it is rotated by hand with openssl, "
                                   "see docs/deploy.md. A rotation Lambda would have to know that protocol.",
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
            "TABLE_NAME": self.table.table_name,
            "SMS_GATEWAY": "sns",
            "EMAIL_GATEWAY": "ses",
            "EMAIL_SENDER": f"no-reply@{self.stage.email_domain}",
            "VIDEO_GATEWAY": "chime",
            "DOCUMENTS_BUCKET": self.documents_bucket.bucket_name,
            "LOG_LEVEL": self.stage.log_level,
            "POWERTOOLS_SERVICE_NAME": APP_NAME,
        }
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
            iam.PolicyStatement(
                sid="Queues",
                actions=[
                    "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
                ],
                resources=[q.queue_arn for q in self.queues.values()],
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
        # Inside the OpenAPI body, so SAM's deployment hash changes with them and a
        # change reaches the live stage (a separate AWS::ApiGateway::GatewayResponse
        # is only picked up by the next deployment).
        api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses())

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
        for rule, reason in {
            "HIPAA.Security-LambdaConcurrency": "The AwsCustomResource provider " + why_deploy_only
                                                + "; reserved concurrency would only waste account capacity.",
            "HIPAA.Security-LambdaDLQ": "The AwsCustomResource provider is invoked synchronously by "
                                        "CloudFormation, which reports failures itself; a DLQ would never receive.",
            "HIPAA.Security-LambdaInsideVPC": "The AwsCustomResource provider only calls the SNS control-plane "
                                              "API and touches no patient data; a VPC would need NAT or endpoints.",
        }.items():
            ack(provider, rule, reason)

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
        for suffix, dlq in self.dlqs.items():
            alarm(
                f"{_camel(suffix)}DlqDepthAlarm",
                dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=period),
                f"Messages are waiting in the {suffix} dead-letter queue.",
            )
        return topic

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
            description="Register in Stripe once the payments issue has shipped the route",
            value=f"https://{self.rest_api.ref}.execute-api.{self.region}.{self.url_suffix}/{API_GATEWAY_STAGE}/payments/stripe/webhook",
        )


def gateway_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for response_type, (status, title, code) in GATEWAY_PROBLEMS.items():
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "code": code}, separators=(",", ":")
        )
        headers = {"gatewayresponse.header.Content-Type": "'application/problem+json'"}
        if status == 429:
            headers["gatewayresponse.header.Retry-After"] = "'1'"
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
