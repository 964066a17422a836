"""Integration tests run against Amazon's DynamoDB Local (the session fixture in tests/conftest.py)."""
import os

import pytest

# The payments benchmark measures, it does not check: bench/payments.py runs it (PAYMENTS_BENCH=1); the suite
# does not collect it (rather than skipping it in every run).
collect_ignore = [] if os.environ.get("PAYMENTS_BENCH") == "1" else ["test_payments_bench.py"]


@pytest.fixture
def ddb_endpoint(dynamodb_local_server):
    return dynamodb_local_server.endpoint
