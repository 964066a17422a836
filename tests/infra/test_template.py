"""What the synthesised CloudFormation promises, stage by stage (dev and prod)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Iterator

import pytest
from conftest import INFRA_DIR

Template = dict[str, Any]


# ---- helpers ---------------------------------------------------------------------------
def resources(template: Template, rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


def only(template: Template, rtype: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {sorted(found)}"
    return next(iter(found.items()))


def ref_id(value: Any) -> str:
    """Logical id behind {"Ref": X} or {"Fn::GetAtt": [X, ...]}."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    raise AssertionError(f"not a reference to a resource: {value!r}")


def assert_customer_managed_key(template: Template, value: Any) -> None:
    key_id = ref_id(value)
    key = template["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key", key_id
    assert key["Properties"]["EnableKeyRotation"] is True, f"{key_id} must rotate"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(policy_document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from as_list(policy_document["Statement"])


def tls_only_statement_for(template: Template, policy_type: str, target_key: str, target_id: str) -> bool:
    for policy in resources(template, policy_type).values():
        props = policy["Properties"]
        targets = [ref_id(t) for t in as_list(props[target_key])]
        if target_id not in targets:
            continue
        for st in statements(props["PolicyDocument"]):
            if (
                st["Effect"] == "Deny"
                and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            ):
                return True
    return False


# ---- DynamoDB ------------------------------------------------------------------------------
def test_table_matches_the_single_definition(template: Template, table_definition) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    want = table_definition.create_table_params("ignored")

    assert props["KeySchema"] == want["KeySchema"]
    assert props["KeySchema"][0] == {"AttributeName": table_definition.PK, "KeyType": "HASH"}
    assert props["KeySchema"][1] == {"AttributeName": table_definition.SK, "KeyType": "RANGE"}
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        want["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    got_gsis = {g["IndexName"]: g for g in props["GlobalSecondaryIndexes"]}
    assert set(got_gsis) == set(table_definition.GLOBAL_INDEXES)
    for gsi in want["GlobalSecondaryIndexes"]:
        got = got_gsis[gsi["IndexName"]]
        assert got["KeySchema"] == gsi["KeySchema"]
        assert got["Projection"] == gsi["Projection"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": table_definition.TTL_ATTRIBUTE, "Enabled": True}


def test_table_is_recoverable_encrypted_and_streamed(template: Template) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert_customer_managed_key(template, sse["KMSMasterKeyId"])
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_table_is_in_a_backup_plan(template: Template) -> None:
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    selections = resources(template, "AWS::Backup::BackupSelection").values()
    chosen = [ref_id(r) for s in selections for r in s["Properties"]["BackupSelection"]["Resources"]]
    assert table_id in chosen


def test_prod_protects_its_data_and_dev_can_be_torn_down(template: Template, stage: str) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    if stage == "prod":
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
        for secret in resources(template, "AWS::SecretsManager::Secret").values():
            assert secret["DeletionPolicy"] == "Retain"
        for key in resources(template, "AWS::KMS::Key").values():
            assert key["DeletionPolicy"] == "Retain"
    else:
        assert table["Properties"].get("DeletionProtectionEnabled", False) is False
        assert table["DeletionPolicy"] == "Delete"


# ---- S3 -------------------------------------------------------------------------------------
def documents_and_log_bucket(template: Template) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    buckets = resources(template, "AWS::S3::Bucket")
    # the portal's bucket logs too, but holds static files under SSE-S3: documents are under KMS
    docs = {k: v for k, v in buckets.items() if "LoggingConfiguration" in v["Properties"]
            and v["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"}
    assert len(docs) == 1, f"expected exactly one bucket with access logging, got {sorted(docs)}"
    doc_id, doc = next(iter(docs.items()))
    log_id = ref_id(doc["Properties"]["LoggingConfiguration"]["DestinationBucketName"])
    assert log_id != doc_id
    return doc_id, doc, log_id, buckets[log_id]


BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def test_documents_bucket_is_private_encrypted_versioned_logged_tls_only(template: Template) -> None:
    doc_id, doc, _, _ = documents_and_log_bucket(template)
    props = doc["Properties"]
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms"
    assert_customer_managed_key(template, rule["KMSMasterKeyID"])
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["LogFilePrefix"]
    assert tls_only_statement_for(template, "AWS::S3::BucketPolicy", "Bucket", doc_id)


def test_access_log_bucket_is_locked_down(template: Template) -> None:
    _, _, log_id, log = documents_and_log_bucket(template)
    props = log["Properties"]
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"
    ] == "AES256"  # S3 log delivery cannot write to SSE-KMS buckets
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any(r.get("ExpirationInDays") for r in props["LifecycleConfiguration"]["Rules"])
    assert tls_only_statement_for(template, "AWS::S3::BucketPolicy", "Bucket", log_id)


# ---- SQS ------------------------------------------------------------------------------------
def dead_letter_queue_ids(template: Template) -> set[str]:
    """Queues that catch what failed: SQS redrive targets and event-source-mapping destinations."""
    queues = resources(template, "AWS::SQS::Queue")
    ids = {
        ref_id(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
        on_failure = mapping["Properties"].get("DestinationConfig", {}).get("OnFailure")
        if on_failure:
            ids.add(ref_id(on_failure["Destination"]))
    for fn in resources(template, "AWS::Serverless::Function").values():  # asynchronous invocations
        if "DeadLetterQueue" in fn["Properties"]:
            ids.add(ref_id(fn["Properties"]["DeadLetterQueue"]["TargetArn"]))
    for fn in resources(template, "AWS::Lambda::Function").values():
        if "DeadLetterConfig" in fn["Properties"]:
            ids.add(ref_id(fn["Properties"]["DeadLetterConfig"]["TargetArn"]))
    return ids


def test_every_queue_is_encrypted_tls_only_and_redriven(template: Template) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    dlq_ids = dead_letter_queue_ids(template)
    names = set()
    for qid, q in queues.items():
        props = q["Properties"]
        assert_customer_managed_key(template, props["KmsMasterKeyId"])
        assert tls_only_statement_for(template, "AWS::SQS::QueuePolicy", "Queues", qid), qid
        if qid in dlq_ids:
            continue
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == 5, qid
        assert queues[ref_id(redrive["deadLetterTargetArn"])]["Type"] == "AWS::SQS::Queue"
        names.add(props["QueueName"])
    # notifications, payments events, the event stream's failed batches, the minutely jobs' failed
    # invocations, the deploy-time custom resource provider's failed invocations
    assert len(dlq_ids) == 5
    assert any(n.endswith("-notifications") for n in names)
    assert any(n.endswith("-payments-events") for n in names)


# ---- the Lambda roles --------------------------------------------------------------------------
CONSUMER = "EventConsumer"  # the Chalice function fed by the table's stream
AUTHORIZER = "TokenAuthorizer"  # API Gateway's token authorizer: a role of its own
NOTIFY = "DeliverNotifications"  # the notifications queue's consumer: a role of its own


def role_documents(template: Template, role_id: str) -> list[dict[str, Any]]:
    role = template["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    assert not role["Properties"].get("ManagedPolicyArns"), f"no AWS-managed policies on {role_id}"
    docs = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    for ptype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(template, ptype).values():
            if role_id in [ref_id(r) for r in policy["Properties"].get("Roles", [])]:
                docs.append(policy["Properties"]["PolicyDocument"])
    assert docs, f"{role_id} has no policy"
    return docs


def function_role_ids(template: Template) -> dict[str, str]:
    functions = resources(template, "AWS::Serverless::Function")
    assert functions, "no Chalice functions in the template"
    return {fid: ref_id(f["Properties"]["Role"]) for fid, f in functions.items()}


def app_role_id(template: Template) -> str:
    """The one CDK role of every Chalice function but the stream consumer and the authorizer."""
    role_ids = {rid for fid, rid in function_role_ids(template).items() if fid not in (CONSUMER, AUTHORIZER, NOTIFY)}
    assert len(role_ids) == 1, f"every Chalice function but {CONSUMER}, {AUTHORIZER} and {NOTIFY} should use the " \
                               f"one CDK role, got {role_ids}"
    return role_ids.pop()


def lambda_role_documents(template: Template) -> list[dict[str, Any]]:
    return role_documents(template, app_role_id(template))


def consumer_role_documents(template: Template) -> list[dict[str, Any]]:
    return role_documents(template, function_role_ids(template)[CONSUMER])


def allowed(docs: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    """(action, resource) pairs that the documents allow."""
    for doc in docs:
        for st in statements(doc):
            if st["Effect"] == "Allow":
                for action in as_list(st["Action"]):
                    for resource in as_list(st["Resource"]):
                        yield action, resource


@pytest.mark.parametrize("which", ["app", "consumer", "notify"])
def test_lambda_role_has_no_wildcards_but_sms_publish(template: Template, which: str) -> None:
    docs = {"app": lambda_role_documents, "consumer": consumer_role_documents,
            "notify": lambda t: role_documents(t, function_role_ids(t)[NOTIFY])}[which](template)
    wildcard_resources = []
    for doc in docs:
        for st in statements(doc):
            if st["Effect"] != "Allow":
                continue
            actions = as_list(st["Action"])
            for action in actions:
                assert "*" not in action, f"wildcard action {action!r} in {st.get('Sid')}"
            for resource in as_list(st["Resource"]):
                if resource == "*":
                    wildcard_resources.append(actions)
                elif isinstance(resource, str):
                    assert not resource.endswith(":*"), f"wildcard resource {resource!r}"
    assert wildcard_resources == [["sns:Publish"]]


def test_lambda_role_reaches_exactly_the_app_resources(template: Template) -> None:
    granted: dict[str, set[str]] = {}
    for doc in lambda_role_documents(template):
        for st in statements(doc):
            if st["Effect"] != "Allow":
                continue
            for resource in as_list(st["Resource"]):
                rid = resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)
                granted.setdefault(rid, set()).update(as_list(st["Action"]))
    blob = " ".join(granted)
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    assert table_id in blob
    for secret_id in resources(template, "AWS::SecretsManager::Secret"):
        assert secret_id in blob, secret_id
    actions = set().union(*granted.values())
    assert "dynamodb:Scan" not in actions
    assert "secretsmanager:GetSecretValue" in actions
    assert {"dynamodb:CreateTable", "dynamodb:DeleteTable", "s3:DeleteBucket", "kms:ScheduleKeyDeletion"}.isdisjoint(
        actions
    )


# ---- the outbox: stream consumer and scheduled drain ------------------------------------------
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}


def stream_mapping_item(template: Template) -> tuple[str, dict[str, Any]]:
    found = [(mid, m) for mid, m in resources(template, "AWS::Lambda::EventSourceMapping").items()
             if "StreamArn" in json.dumps(m["Properties"]["EventSourceArn"])]
    assert len(found) == 1, found
    return found[0]


def stream_mapping(template: Template) -> dict[str, Any]:
    return stream_mapping_item(template)[1]["Properties"]


def test_table_stream_feeds_the_event_consumer(template: Template) -> None:
    props = stream_mapping(template)
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    assert props["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert props["FunctionName"] == {"Ref": CONSUMER}
    consumer = template["Resources"][CONSUMER]
    assert consumer["Type"] == "AWS::Serverless::Function"
    assert consumer["Properties"]["Handler"] == "chalicelib.meta.jobs.event_consumer"
    assert props["StartingPosition"] in {"LATEST", "TRIM_HORIZON"}
    assert props.get("Enabled", True) is True


def test_only_new_event_items_invoke_the_consumer(template: Template) -> None:
    (flt,) = stream_mapping(template)["FilterCriteria"]["Filters"]
    assert json.loads(flt["Pattern"]) == {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"type": {"S": ["event"]}}},
    }


def test_failing_stream_batches_are_split_bounded_and_dead_lettered(template: Template) -> None:
    props = stream_mapping(template)
    assert 1 <= props["BatchSize"] <= 100
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10  # -1 (the default) retries until the record expires
    assert 0 < props.get("MaximumRecordAgeInSeconds", -1) <= 6 * 3600
    dlq_id = ref_id(props["DestinationConfig"]["OnFailure"]["Destination"])
    dlq = template["Resources"][dlq_id]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert_customer_managed_key(template, dlq["Properties"]["KmsMasterKeyId"])
    assert tls_only_statement_for(template, "AWS::SQS::QueuePolicy", "Queues", dlq_id)
    watched = [
        a for a in alarms(template)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and any(d["Name"] == "QueueName" and ref_id(d["Value"]) == dlq_id for d in a["Dimensions"])
    ]
    assert len(watched) == 1
    lag = [a for a in alarms(template) if a.get("MetricName") == "IteratorAge"]
    assert len(lag) == 1 and {"Name": "FunctionName", "Value": {"Ref": CONSUMER}} in lag[0]["Dimensions"]


def test_consumer_alone_reads_the_stream_and_only_this_tables(template: Template) -> None:
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    stream_arn = {"Fn::GetAtt": [table_id, "StreamArn"]}
    consumer_grants = list(allowed(consumer_role_documents(template)))
    stream_grants = {(a, json.dumps(r, sort_keys=True)) for a, r in consumer_grants if a in STREAM_READ}
    assert stream_grants == {(a, json.dumps(stream_arn, sort_keys=True)) for a in STREAM_READ}
    # Nothing else of the stream API, and none of it on another resource.
    assert not [a for a, _ in consumer_grants if a.startswith("dynamodb:") and "Stream" in a and a not in STREAM_READ]
    # The mapping's on-failure destination is written with the function's role.
    dlq_id = ref_id(stream_mapping(template)["DestinationConfig"]["OnFailure"]["Destination"])
    assert ("sqs:SendMessage", {"Fn::GetAtt": [dlq_id, "Arn"]}) in consumer_grants
    # The other functions cannot read the stream at all.
    assert not [a for a, _ in allowed(lambda_role_documents(template)) if a in STREAM_READ]


def test_mapping_waits_for_the_consumer_permissions(template: Template) -> None:
    (mapping_id, mapping) = stream_mapping_item(template)
    consumer_role = function_role_ids(template)[CONSUMER]
    policies = {
        pid for pid, p in resources(template, "AWS::IAM::ManagedPolicy").items()
        if consumer_role in [ref_id(r) for r in p["Properties"].get("Roles", [])]
    }
    assert policies <= set(as_list(mapping.get("DependsOn", []))), mapping_id


# ---- the notifications queue's consumer -----------------------------------------------------------
NOTIFY_ACTIONS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem",
                  "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                  "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility", "secretsmanager:GetSecretValue",
                  "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "sns:Publish",
                  "logs:CreateLogStream", "logs:PutLogEvents"}


def notifications_queue_id(template: Template) -> str:
    (qid,) = [k for k, q in resources(template, "AWS::SQS::Queue").items()
              if q["Properties"]["QueueName"].endswith("-notifications")]
    return qid


def test_the_notifications_queue_feeds_its_consumer_with_partial_batch_responses(template: Template,
                                                                                 stage_config) -> None:
    qid = notifications_queue_id(template)
    (mapping,) = [m["Properties"] for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [qid, "Arn"]}]
    assert mapping["FunctionName"] == {"Ref": NOTIFY}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["BatchSize"] <= 10
    fn = template["Resources"][NOTIFY]["Properties"]
    assert fn["Handler"] == "chalicelib.notify.jobs.deliver_notifications"
    # Chalice's own SQS event (on the local queue's name) is gone: this mapping is the one
    assert "Events" not in fn
    # never throttled below the mapping's concurrency (a throttled batch would count a receive)
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == stage_config.notify_consumer_concurrency
    assert fn["ReservedConcurrentExecutions"] == stage_config.notify_consumer_concurrency
    # after five receives a message goes to the notifications DLQ, which an alarm watches (> 0)
    queue = template["Resources"][qid]["Properties"]
    dlq_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["VisibilityTimeout"] >= 6 * stage_config.lambda_timeout_s
    watched = [a for a in alarms(template) if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
               and any(d["Name"] == "QueueName" and ref_id(d["Value"]) == dlq_id for d in a["Dimensions"])]
    assert len(watched) == 1 and watched[0]["Threshold"] == 0
    assert watched[0]["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_notify_consumer_reaches_only_what_delivery_needs(template: Template) -> None:
    role_id = function_role_ids(template)[NOTIFY]
    assert role_id != app_role_id(template)
    docs = role_documents(template, role_id)
    grants = list(allowed(docs))
    assert {a for a, _ in grants} == NOTIFY_ACTIONS
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    qid = notifications_queue_id(template)
    (firebase,) = [k for k, v in resources(template, "AWS::SecretsManager::Secret").items()
                   if v["Properties"]["Name"].endswith("/firebase")]
    for action, resource in grants:
        if action.startswith("dynamodb:"):
            assert resource == {"Fn::GetAtt": [table_id, "Arn"]}, (action, resource)  # no index, no stream
        elif action.startswith("sqs:"):
            assert resource == {"Fn::GetAtt": [qid, "Arn"]}, (action, resource)
        elif action == "secretsmanager:GetSecretValue":
            assert resource == {"Ref": firebase}, resource
    # table items by partition key prefix: the notify items, profiles, sessions and token owners only
    (table_st,) = [st for d in docs for st in statements(d) if st.get("Sid") == "NotifyItems"]
    assert table_st["Condition"] == {"ForAllValues:StringLike": {
        "dynamodb:LeadingKeys": ["NOTIFYMSG#*", "USER#*", "SESSION#*", "FCMTOKEN#*"]}}
    # SMS to phone numbers only: every topic denied
    denies = [st for d in docs for st in statements(d) if st["Effect"] == "Deny"]
    assert any(as_list(st["Action"]) == ["sns:Publish"] for st in denies)
    # and the mapping waits for that policy
    (mapping,) = [m for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": NOTIFY}]
    policies = {pid for pid, p in resources(template, "AWS::IAM::ManagedPolicy").items()
                if role_id in [ref_id(r) for r in p["Properties"].get("Roles", [])]}
    assert policies and policies <= set(as_list(mapping.get("DependsOn", [])))


def test_deployed_functions_push_through_fcm(template: Template) -> None:
    (firebase,) = [k for k, v in resources(template, "AWS::SecretsManager::Secret").items()
                   if v["Properties"]["Name"].endswith("/firebase")]
    for fid, fn in resources(template, "AWS::Serverless::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["PUSH_GATEWAY"] == "fcm", fid
        assert env["FIREBASE_SECRET_ARN"] == {"Ref": firebase}, fid
        assert ref_id(env["NOTIFICATIONS_QUEUE_URL"]) == notifications_queue_id(template), fid


def test_drain_events_runs_every_minute(template: Template) -> None:
    fn = template["Resources"]["DrainEvents"]
    assert fn["Type"] == "AWS::Serverless::Function"
    assert fn["Properties"]["Handler"] == "chalicelib.meta.jobs.drain_events"
    (event,) = fn["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


# ---- Lambda environment ------------------------------------------------------------------------
SECRET_LOOKING = re.compile(r"(sk_(live|test)_|whsec_|BEGIN [A-Z ]*PRIVATE KEY|resolve:secretsmanager)", re.I)
SECRET_ENVS = {
    "MASTER_KEY_SECRET_ARN",
    "TOKEN_SIGNING_KEY_SECRET_ARN",
    "TOKEN_VERIFICATION_KEYS_SECRET_ARN",
    "STRIPE_SECRET_ARN",
    "FIREBASE_SECRET_ARN",
}


def test_lambda_environment_holds_references_never_secret_values(template: Template, stage: str) -> None:
    secrets = resources(template, "AWS::SecretsManager::Secret")
    for fid, fn in resources(template, "AWS::Serverless::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert SECRET_ENVS <= set(env), fid
        for name, value in env.items():
            text = json.dumps(value)
            assert not SECRET_LOOKING.search(text), f"{fid}.{name} looks like a secret value"
            assert "SecretString" not in text, f"{fid}.{name} reads a secret value"
            if name.endswith("_SECRET_ARN"):
                assert value == {"Ref": ref_id(value)} and ref_id(value) in secrets, f"{fid}.{name}"
            elif isinstance(value, dict) and "Fn::Join" in value:  # PORTAL_BASE_URL: https:// + distribution
                assert not any(ref_id(p) in secrets for p in value["Fn::Join"][1] if isinstance(p, dict)), name
            elif isinstance(value, dict):
                assert ref_id(value) not in secrets, f"{fid}.{name} points at a secret without *_SECRET_ARN"
        assert env["STAGE"] == stage
        assert env["SMS_GATEWAY"] == "sns"
        assert env["SERVICE_NAME"] == "clinic-backend"
        assert env["LOG_LEVEL"] in {"DEBUG", "INFO", "WARNING", "ERROR"}
        assert template["Resources"][ref_id(env["TABLE_NAME"])]["Type"] == "AWS::DynamoDB::Table"
        assert template["Resources"][ref_id(env["DOCUMENTS_BUCKET"])]["Type"] == "AWS::S3::Bucket"
        records_key = template["Resources"][ref_id(env["RECORDS_KMS_KEY_ID"])]
        assert records_key["Type"] == "AWS::KMS::Key" and records_key["Properties"]["EnableKeyRotation"] is True
        for q in ("NOTIFICATIONS_QUEUE_URL", "PAYMENTS_EVENTS_QUEUE_URL"):
            assert template["Resources"][ref_id(env[q])]["Type"] == "AWS::SQS::Queue"


def test_every_secret_is_kms_encrypted_and_has_no_literal_value(template: Template) -> None:
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert len(secrets) == 5  # master, signing key, verification keys, Stripe, Firebase
    for sid, secret in secrets.items():
        props = secret["Properties"]
        assert_customer_managed_key(template, props["KmsKeyId"])
        assert "SecretString" not in props, f"{sid} carries a value in the template"
        assert "GenerateSecretString" in props


def test_lambda_log_groups_are_encrypted_with_retention(template: Template, stage_config) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    for fid in resources(template, "AWS::Serverless::Function"):
        mine = [
            g for g in groups.values() if fid in json.dumps(g["Properties"].get("LogGroupName", ""))
        ]
        assert len(mine) == 1, fid
        assert_customer_managed_key(template, mine[0]["Properties"]["KmsKeyId"])
        assert mine[0]["Properties"]["RetentionInDays"] == stage_config.log_retention_days


# ---- alarms -------------------------------------------------------------------------------------
def alarms(template: Template) -> list[dict[str, Any]]:
    found = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    topic_id, topic = only(template, "AWS::SNS::Topic")
    assert_customer_managed_key(template, topic["Properties"]["KmsMasterKeyId"])
    for a in found:
        assert [ref_id(x) for x in a["AlarmActions"]] == [topic_id], a.get("AlarmDescription")
    return found


def metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {m["MetricStat"]["Metric"]["MetricName"] for m in alarm.get("Metrics", []) if "MetricStat" in m}


def test_alarm_on_api_5xx(template: Template, stage: str) -> None:
    _, api = only(template, "AWS::Serverless::Api")
    found = [a for a in alarms(template) if a.get("MetricName") == "5XXError"]
    assert len(found) == 1
    dims = {d["Name"]: d["Value"] for d in found[0]["Dimensions"]}
    assert dims == {"ApiName": api["Properties"]["Name"], "Stage": api["Properties"]["StageName"]}
    assert found[0]["Namespace"] == "AWS/ApiGateway"


def test_alarms_on_lambda_errors_and_throttles(template: Template) -> None:
    all_alarms = alarms(template)
    for fid in resources(template, "AWS::Serverless::Function"):
        for metric in ("Errors", "Throttles"):
            hits = [
                a for a in all_alarms
                if a.get("MetricName") == metric and {"Name": "FunctionName", "Value": {"Ref": fid}} in a["Dimensions"]
            ]
            assert len(hits) == 1, (fid, metric)
            assert hits[0]["ComparisonOperator"] == "GreaterThanThreshold" and hits[0]["Threshold"] == 0


def test_alarm_on_dynamodb_throttles(template: Template) -> None:
    hits = [a for a in alarms(template) if {"ReadThrottleEvents", "WriteThrottleEvents"} <= metric_names(a)]
    assert len(hits) == 1


def test_alarm_on_every_dead_letter_queue(template: Template) -> None:
    dlq_ids = dead_letter_queue_ids(template)
    watched = set()
    for a in alarms(template):
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
            for d in a["Dimensions"]:
                if d["Name"] == "QueueName":
                    watched.add(ref_id(d["Value"]))
    assert watched == dlq_ids


# ---- API Gateway ----------------------------------------------------------------------------------
def test_api_has_encrypted_access_logs_and_stage_throttling(template: Template, stage_config) -> None:
    _, api = only(template, "AWS::Serverless::Api")
    props = api["Properties"]
    log_group = template["Resources"][ref_id(props["AccessLogSetting"]["DestinationArn"])]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert_customer_managed_key(template, log_group["Properties"]["KmsKeyId"])
    assert log_group["Properties"]["RetentionInDays"] == stage_config.log_retention_days
    fmt = json.loads(props["AccessLogSetting"]["Format"])
    assert fmt["requestId"] == "$context.requestId" and fmt["status"] == "$context.status"
    assert "$context.path" not in props["AccessLogSetting"]["Format"]  # real paths may carry ids
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == stage_config.api_rate_limit
    assert settings["ThrottlingBurstLimit"] == stage_config.api_burst_limit
    assert settings.get("DataTraceEnabled") is False  # never log request bodies
    assert props["EndpointConfiguration"] == "REGIONAL"


def test_gateway_answers_in_problem_json(template: Template) -> None:
    _, api = only(template, "AWS::Serverless::Api")
    responses = api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert json.loads(responses["UNAUTHORIZED"]["responseTemplates"]["application/json"]) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "code": "unauthorized",
    }
    for rtype in ("UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX",
                  "MISSING_AUTHENTICATION_TOKEN", "INTEGRATION_TIMEOUT"):
        assert rtype in responses, rtype
    for rtype, resp in responses.items():
        assert resp["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/problem+json'"
        for body in resp["responseTemplates"].values():
            problem = json.loads(body)
            assert set(problem) == {"type", "title", "status", "code"}, rtype
            assert str(problem["status"]) == resp["statusCode"], rtype
            assert re.fullmatch(r"[a-z_]+", problem["code"]), rtype
    assert responses["THROTTLED"]["statusCode"] == "429"
    assert "gatewayresponse.header.Retry-After" in responses["THROTTLED"]["responseParameters"]
    assert responses["ACCESS_DENIED"]["statusCode"] == "403"


# ---- SMS settings ----------------------------------------------------------------------------------
def test_sms_is_transactional_with_the_stage_spend_limit(template: Template, stage_config) -> None:
    _, custom = only(template, "Custom::AWS")
    for phase in ("Create", "Update"):
        call = json.loads(custom["Properties"][phase])
        assert call["service"] == "SNS" and call["action"].lower() == "setsmsattributes"
        assert call["parameters"]["attributes"] == {
            "DefaultSMSType": "Transactional",
            "MonthlySpendLimit": str(stage_config.sms_monthly_spend_limit_usd),
        }


# ---- cdk-nag really gates the synth -------------------------------------------------------------------
def test_unacknowledged_nag_finding_fails_the_synth(tmp_path) -> None:
    """An insecure bucket with no written acknowledgement must stop `cdk synth`."""
    context = {"stage": "dev", "nag_selftest": True}
    source = os.environ.get("INFRA_CHALICE_SOURCE")
    if source:
        context["chalice_source"] = source
    cdk_json = json.loads((INFRA_DIR / "cdk.json").read_text())
    context.update({k: v for k, v in cdk_json["context"].items() if k != "stage"})
    env = dict(
        os.environ,
        CDK_OUTDIR=str(tmp_path / "out"),
        CDK_CONTEXT_JSON=json.dumps(context),
        AWS_ACCESS_KEY_ID="dummy",
        AWS_SECRET_ACCESS_KEY="dummy",
        AWS_DEFAULT_REGION="eu-central-1",
        CDK_DEFAULT_ACCOUNT="111111111111",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    proc = subprocess.run(
        [sys.executable, "app.py"], cwd=INFRA_DIR, env=env,
        capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "NagSelfTestBucket" in output, output[-3000:]
    assert "AwsSolutions-S1" in output or "HIPAA.Security-S3" in output, output[-3000:]


def test_the_app_only_sends_to_the_notifications_queue(template: Template) -> None:
    """The API and the jobs put messages on the notifications queue and nothing else: no receiving or deleting
    (that is the consumer's own role), no other queue but the dead-letter queue of the app's own functions'
    failed asynchronous runs (the jobs)."""
    role = app_role_id(template)
    docs = role_documents(template, role)
    sqs_grants = {(a, json.dumps(r, sort_keys=True)) for a, r in allowed(docs) if a.startswith("sqs:")}
    own_dlqs = {json.dumps(fn["Properties"]["DeadLetterQueue"]["TargetArn"], sort_keys=True)
                for fn in resources(template, "AWS::Serverless::Function").values()
                if "DeadLetterQueue" in fn["Properties"] and ref_id(fn["Properties"].get("Role", {})) == role}
    qid = notifications_queue_id(template)
    assert own_dlqs and {a for a, _ in sqs_grants} == {"sqs:SendMessage"}, sqs_grants
    assert {r for _, r in sqs_grants} == {json.dumps({"Fn::GetAtt": [qid, "Arn"]}, sort_keys=True)} | own_dlqs
