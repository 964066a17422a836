"""The synthesised stack against what the app needs to run in AWS.

- every setting the app requires in a deployed stage is set by the stack, and the settings
  model, given exactly the functions' environment, starts (it fails closed otherwise);
- nothing the stack sets is unknown to the settings;
- the Stripe secret has the JSON shape the app reads field by field, and the webhook URL in
  the outputs is the route the app serves;
- every asynchronously invoked function has a dead-letter queue, bounded retries and
  reserved concurrency; the authorizer reads sessions and nothing else;
- the portal: private bucket, CloudFront with origin access control, the local CSP;
- every checkov skip carries its reason.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

import pytest
from conftest import REPO_ROOT
from test_template import allowed, as_list, only, ref_id, resources, role_documents, statements

Template = dict[str, Any]
AUTHORIZER = "TokenAuthorizer"
JOBS = ("ExpireHolds", "DrainEvents", "SendReminders", "ReleaseHeld", "ExpireCashback",
        "SnapshotSchedules", "SendCare")


def _load(name: str, relpath: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relpath)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def settings_module():
    return _load("settings_under_test", "chalicelib/core/settings.py")


def render(value: Any) -> str:
    """A template value as the string Lambda would see (references become stand-ins)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return f"resolved-{ref_id(value)}"
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(p) for p in parts)
    raise AssertionError(f"cannot render {value!r}")


def env_names_known_to(settings_module) -> set[str]:
    names = set()
    for name, field in settings_module.Settings.model_fields.items():
        alias = field.validation_alias
        names.add((alias if isinstance(alias, str) else name).upper())
    return names


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


# ---- settings <-> stack ------------------------------------------------------------------------
def test_the_stack_sets_only_settings_the_app_knows(template: Template, settings_module) -> None:
    known = env_names_known_to(settings_module)
    for fid, fn in functions(template).items():
        env = set(fn["Properties"]["Environment"]["Variables"])
        assert env - known == set(), f"{fid} is given variables no setting reads: {sorted(env - known)}"


def test_the_stack_sets_every_setting_a_deployed_stage_requires(template: Template, settings_module, stage) -> None:
    required = {name.upper() for name in settings_module.REQUIRED_IN_AWS}
    for fid, fn in functions(template).items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert required <= set(env), f"{fid} misses {sorted(required - set(env))}"


def test_the_settings_start_on_exactly_the_functions_environment(template: Template, settings_module, stage,
                                                                 monkeypatch) -> None:
    """What the Lambda would do at its first request: build the settings and fail closed."""
    for fid, fn in functions(template).items():
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in fn["Properties"]["Environment"]["Variables"].items():
            monkeypatch.setenv(name, render(value))
        monkeypatch.setenv("AWS_REGION", "eu-central-1")  # Lambda's runtime sets it
        settings_module.reset_settings()
        s = settings_module.get_settings()  # raises SettingsError naming what is missing
        assert s.stage == stage, fid
        assert s.public_base_url.startswith("https://") and "execute-api" not in s.public_base_url
        assert s.portal_base_url.startswith("https://resolved-PortalDistribution")
    settings_module.reset_settings()


def test_a_stack_missing_a_secret_arn_would_not_start(template: Template, settings_module, monkeypatch) -> None:
    """The check above can fail: the same environment less the Stripe ARN is refused."""
    fn = functions(template)["APIHandler"]
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in fn["Properties"]["Environment"]["Variables"].items():
        if name != "STRIPE_SECRET_ARN":
            monkeypatch.setenv(name, render(value))
    settings_module.reset_settings()
    with pytest.raises(settings_module.SettingsError, match="STRIPE_SECRET_ARN is not set"):
        settings_module.get_settings()
    settings_module.reset_settings()


def test_the_stripe_secret_is_created_in_the_shape_the_app_reads(template: Template) -> None:
    secrets = resources(template, "AWS::SecretsManager::Secret")
    (stripe,) = [s for s in secrets.values() if s["Properties"]["Name"].endswith("/stripe")]
    generated = stripe["Properties"]["GenerateSecretString"]
    shape = json.loads(generated["SecretStringTemplate"])
    # the fields core.secrets.stripe_keys reads (read from the source: it imports the settings)
    source = (REPO_ROOT / "chalicelib" / "core" / "secrets.py").read_text()
    assert set(shape) == {"secret_key", "publishable_key", "webhook_secret"}
    for field in shape:
        assert f'"{field}"' in source
        assert shape[field] == ""  # empty until a human fills it in: the app refuses it by name
    env = functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert ref_id(env["STRIPE_SECRET_ARN"]) in {k for k, s in secrets.items() if s is stripe}


def test_the_webhook_url_in_the_outputs_is_the_route_the_app_serves(template: Template, stage_config) -> None:
    from app import app

    url = template["Outputs"]["StripeWebhookUrl"]["Value"]
    prefix = f"https://{stage_config.api_domain}"
    assert isinstance(url, str) and url.startswith(prefix)
    path = url[len(prefix):]
    assert "POST" in app.routes.get(path, {}), f"the app serves no POST {path}"
    assert (REPO_ROOT / "docs" / "deploy.md").read_text().count(path) >= 1
    # and the API is reachable on that domain: a custom domain mapped to the API's stage
    _, mapping = only(template, "AWS::ApiGateway::BasePathMapping")
    assert ref_id(mapping["Properties"]["RestApiId"]) == "RestAPI" and mapping["Properties"]["Stage"] == "api"
    _, domain = only(template, "AWS::ApiGateway::DomainName")
    assert domain["Properties"]["DomainName"] == stage_config.api_domain
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"


# ---- every Lambda: asynchronous ones dead-lettered and bounded ---------------------------------------
def test_every_asynchronously_invoked_function_has_a_dead_letter_queue(template: Template, stage_config) -> None:
    fns = functions(template)
    scheduled = {fid for fid, fn in fns.items()
                 if any(e["Type"] == "Schedule" for e in (fn["Properties"].get("Events") or {}).values())}
    assert scheduled == set(JOBS)
    queues = resources(template, "AWS::SQS::Queue")
    for fid in scheduled:
        props = fns[fid]["Properties"]
        dlq = props["DeadLetterQueue"]
        assert dlq["Type"] == "SQS" and queues[ref_id(dlq["TargetArn"])], fid
        assert props["EventInvokeConfig"]["MaximumRetryAttempts"] <= 2
        assert props["EventInvokeConfig"]["MaximumEventAgeInSeconds"] <= 300
        assert props["ReservedConcurrentExecutions"] == stage_config.job_reserved_concurrency
        # its role may write there
        grants = list(allowed(role_documents(template, ref_id(props["Role"]))))
        assert ("sqs:SendMessage", dlq["TargetArn"]) in grants, fid
    # the CloudFormation custom resource provider is invoked asynchronously too
    for lid, fn in resources(template, "AWS::Lambda::Function").items():
        target = fn["Properties"]["DeadLetterConfig"]["TargetArn"]
        assert queues[ref_id(target)]
        grants = list(allowed(role_documents(template, ref_id(fn["Properties"]["Role"]))))
        assert ("sqs:SendMessage", target) in grants, lid
    consumer = fns["EventConsumer"]["Properties"]
    assert consumer["ReservedConcurrentExecutions"] == stage_config.event_consumer_reserved_concurrency


def test_the_authorizer_reads_sessions_and_nothing_else(template: Template) -> None:
    fn = functions(template)[AUTHORIZER]
    role_id = ref_id(fn["Properties"]["Role"])
    others = {ref_id(f["Properties"]["Role"]) for fid, f in functions(template).items() if fid != AUTHORIZER}
    assert role_id not in others, "the authorizer shares a role"
    table_id, _ = only(template, "AWS::DynamoDB::Table")
    secrets = resources(template, "AWS::SecretsManager::Secret")
    # it verifies with the public keys (a secret of their own), never with the private key that signs
    (verify_id,) = [k for k, s in secrets.items() if s["Properties"]["Name"].endswith("/token-verification-keys")]
    seen: set[str] = set()
    for doc in role_documents(template, role_id):
        for st in statements(doc):
            assert st["Effect"] == "Allow"
            for action in as_list(st["Action"]):
                seen.add(action)
                resources_ = as_list(st["Resource"])
                if action.startswith("dynamodb:"):
                    assert action == "dynamodb:GetItem"
                    assert resources_ == [{"Fn::GetAtt": [table_id, "Arn"]}]  # no index, no stream
                    assert st["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SESSION#*"]}}
                elif action.startswith("secretsmanager:"):
                    assert action == "secretsmanager:GetSecretValue" and resources_ == [{"Ref": verify_id}]
                elif action.startswith("kms:"):
                    assert action == "kms:Decrypt" and "kms:ViaService" in st["Condition"]["StringEquals"]
                else:
                    assert action in {"logs:CreateLogStream", "logs:PutLogEvents"}, action
    assert {"dynamodb:GetItem", "secretsmanager:GetSecretValue"} <= seen


# ---- the portal ---------------------------------------------------------------------------------
def _portal(template: Template) -> tuple[str, dict[str, Any], dict[str, Any]]:
    _, dist = only(template, "AWS::CloudFront::Distribution")
    config = dist["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    bucket_id = ref_id(origin["DomainName"])
    return bucket_id, config, origin


def test_the_portal_is_a_private_bucket_behind_cloudfront_with_origin_access_control(template: Template) -> None:
    from test_template import BLOCK_ALL, tls_only_statement_for

    bucket_id, config, origin = _portal(template)
    bucket = template["Resources"][bucket_id]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert "WebsiteConfiguration" not in bucket["Properties"]
    assert tls_only_statement_for(template, "AWS::S3::BucketPolicy", "Bucket", bucket_id)
    assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    oac_id = ref_id(origin["OriginAccessControlId"])
    oac = template["Resources"][oac_id]["Properties"]["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3" and oac["SigningBehavior"] == "always"
    # only this distribution may read it
    grants = []
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        if ref_id(policy["Properties"]["Bucket"]) != bucket_id:
            continue
        for st in statements(policy["Properties"]["PolicyDocument"]):
            if st["Effect"] == "Allow":
                grants.append(st)
    assert len(grants) == 1
    assert grants[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert as_list(grants[0]["Action"]) == ["s3:GetObject"]
    assert "AWS:SourceArn" in json.dumps(grants[0]["Condition"])
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"


def test_the_portal_gets_the_local_csp_and_security_headers(template: Template, stage_config) -> None:
    from clinic_stack import local_portal_csp

    _, config, _ = _portal(template)
    policy_id = ref_id(config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"])
    cfg = template["Resources"][policy_id]["Properties"]["ResponseHeadersPolicyConfig"]
    sec = cfg["SecurityHeadersConfig"]
    local = local_portal_csp(REPO_ROOT)
    want = local.replace("connect-src 'self'", f"connect-src 'self' https://{stage_config.api_domain}")
    assert sec["ContentSecurityPolicy"] == {"ContentSecurityPolicy": want, "Override": True}
    directives = dict(d.strip().split(" ", 1) for d in want.split(";"))
    assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert sec["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert sec["ContentTypeOptions"] == {"Override": True}
    assert sec["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert sec["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    custom = {h["Header"]: h["Value"] for h in cfg["CustomHeadersConfig"]["Items"]}
    assert custom == {"Cross-Origin-Opener-Policy": "same-origin",
                      "Permissions-Policy": "camera=(), microphone=(), geolocation=()"}


def test_the_api_allows_cors_for_the_portal_distribution_only(template: Template) -> None:
    dist_id, _ = only(template, "AWS::CloudFront::Distribution")
    for fid, fn in functions(template).items():
        portal = fn["Properties"]["Environment"]["Variables"]["PORTAL_BASE_URL"]
        assert portal == {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [dist_id, "DomainName"]}]]}, fid


def test_api_gateways_own_answers_are_readable_by_the_portal_only(template: Template) -> None:
    dist_id, _ = only(template, "AWS::CloudFront::Distribution")
    _, api = only(template, "AWS::Serverless::Api")
    want = {"Fn::Join": ["", ["'https://", {"Fn::GetAtt": [dist_id, "DomainName"]}, "'"]]}
    for rtype, resp in api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"].items():
        params = resp["responseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == want, rtype
        assert params["gatewayresponse.header.Vary"] == "'Origin'"
        assert "Access-Control-Allow-Credentials" not in json.dumps(params)


# ---- checkov ---------------------------------------------------------------------------------------
def test_every_checkov_skip_is_on_one_resource_with_its_reason(template: Template) -> None:
    skipped: dict[str, set[str]] = {}
    for rid, res in template["Resources"].items():
        for skip in (res.get("Metadata", {}).get("checkov", {}) or {}).get("skip", []):
            assert len(skip.get("comment", "")) >= 40, (rid, skip)
            skipped.setdefault(skip["id"], set()).add(rid)
    # the fixes are not skipped: DLQs and concurrency of the jobs, the consumer's concurrency
    for job in JOBS:
        assert job not in skipped.get("CKV_AWS_116", set()) and job not in skipped.get("CKV_AWS_115", set())
    assert "EventConsumer" not in skipped.get("CKV_AWS_115", set())
    assert "DeliverNotifications" not in skipped.get("CKV_AWS_115", set())
    assert skipped.get("CKV_AWS_116", set()) == {"APIHandler", AUTHORIZER, "EventConsumer", "DeliverNotifications"}
