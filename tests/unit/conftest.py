import pytest


@pytest.fixture
def ddb_endpoint():
    """Unit tests run DynamoDB in moto, in process."""
    return None
