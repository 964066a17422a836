"""Integration tests run against Amazon's DynamoDB Local (the session fixture in tests/conftest.py)."""
import pytest


@pytest.fixture
def ddb_endpoint(dynamodb_local_server):
    return dynamodb_local_server.endpoint
