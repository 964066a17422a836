#!/usr/bin/env python3
"""CDK entry point: ``cdk synth -c stage=dev|prod`` (default dev).

Optional context ``-c chalice_source=<dir>`` packages another Chalice project
(used only to try the stack against a stub app); the default is the repo root.
"""
from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks

from clinic_stack import APP_NAME, ClinicBackendStack
from stages import get_stage

INFRA_DIR = Path(__file__).resolve().parent
REPO_ROOT = INFRA_DIR.parent


def main() -> None:
    app = App()
    stage = get_stage(app.node.try_get_context("stage") or "dev")
    # `chalice package` builds a botocore client (no network call) to pick service
    # principals; it needs a region even when nothing talks to AWS.
    os.environ.setdefault("AWS_DEFAULT_REGION", stage.region)
    source = Path(app.node.try_get_context("chalice_source") or REPO_ROOT).resolve()
    stack = ClinicBackendStack(
        app,
        f"{APP_NAME}-{stage.name}",
        stage=stage,
        repo_root=REPO_ROOT,
        chalice_source_dir=source,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=stage.region),
        description=f"{APP_NAME} ({stage.name}): API, data stores, queues, secrets, alarms",
    )
    if app.node.try_get_context("nag_selftest"):
        # Used only by tests/infra: a deliberately unacknowledged finding must fail the synth.
        from aws_cdk import aws_s3 as s3

        s3.Bucket(stack, "NagSelfTestBucket")
    Tags.of(stack).add("app", APP_NAME)
    Tags.of(stack).add("stage", stage.name)
    # Rule packs run at synth; any finding without a written acknowledgement fails it.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True),
        HIPAASecurityChecks(app, verbose=True),
    )
    app.synth()


if __name__ == "__main__":
    main()
