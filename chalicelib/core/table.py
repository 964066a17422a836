"""The single DynamoDB table, defined once.

The tests, the local runner and the CDK stack all build the table from this
definition, so keys, indexes and TTL cannot drift apart.
"""
from __future__ import annotations

from typing import Any

PK = "PK"
SK = "SK"
TTL_ATTRIBUTE = "expires_at"

# name -> (partition key attribute, sort key attribute)
GLOBAL_INDEXES: dict[str, tuple[str, str]] = {
    "GSI1": ("GSI1PK", "GSI1SK"),  # owner -> children (a user's sessions, a patient's visits, ...)
    "GSI2": ("GSI2PK", "GSI2SK"),  # sparse "due" index for scheduled jobs (holds that lapse)
    "GSI3": ("GSI3PK", "GSI3SK"),  # timelines: a doctor's agenda across clinics, duty shifts by specialty
    "GSI4": ("GSI4PK", "GSI4SK"),  # a clinic's calendar
}


def key_attributes() -> list[str]:
    names = [PK, SK]
    for pk, sk in GLOBAL_INDEXES.values():
        names += [pk, sk]
    return names


def create_table_params(table_name: str) -> dict[str, Any]:
    """Arguments for ``CreateTable`` (on-demand; all key attributes are strings)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in key_attributes()],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, (pk, sk) in GLOBAL_INDEXES.items()
        ],
    }


def ensure_table(client: Any, table_name: str) -> bool:
    """Create the table and enable TTL if it is missing. Returns True when created."""
    try:
        client.describe_table(TableName=table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(**create_table_params(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return True
