"""Integration tests run against Amazon's DynamoDB Local, started once per test process."""
import os

import pytest

from local import dynamodb_local


@pytest.fixture(scope="session")
def dynamodb_local_server():
    why = dynamodb_local.available()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"DynamoDB Local is required in CI: {why}")
        pytest.skip(f"DynamoDB Local unavailable outside CI: {why}")
    server = dynamodb_local.start()
    yield server
    server.stop()


@pytest.fixture
def ddb_endpoint(dynamodb_local_server):
    return dynamodb_local_server.endpoint
