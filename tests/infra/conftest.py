"""Fixtures for the infra tests: the templates that infra/check.sh synthesised.

Run with ``bash infra/check.sh`` (it synthesises first), or after it with
``infra/.venv/bin/python -m pytest tests/infra``. Nothing is skipped: a missing
template is a failure that says what to run.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
CDK_OUT = INFRA_DIR / "cdk.out"
STAGES = ("dev", "prod")

if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))


def load_template(stage: str) -> dict[str, Any]:
    path = CDK_OUT / stage / f"clinic-backend-{stage}.template.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `bash infra/check.sh` (it synthesises dev and prod first)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def table_definition() -> ModuleType:
    path = REPO_ROOT / "chalicelib" / "core" / "table.py"
    spec = importlib.util.spec_from_file_location("table_definition_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", params=STAGES)
def stage(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def template(stage: str) -> dict[str, Any]:
    return load_template(stage)


@pytest.fixture(scope="session")
def stage_config(stage: str):
    from stages import get_stage

    return get_stage(stage)
