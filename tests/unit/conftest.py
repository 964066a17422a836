import pytest


@pytest.fixture
def ddb_endpoint():
    """Unit tests run DynamoDB in moto, in process."""
    return None


# The fake FCM server that firebase-admin's real messaging code talks to (notify's tests).
from tests.unit.notify_setup import fcm  # noqa: E402, F401
