"""The DynamoDB table handle and key helpers.

Items are written and read through the low-level client with plain Python
values; ``to_item``/``from_item`` convert with boto3's type serializer.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from chalicelib.core import aws
from chalicelib.core.settings import get_settings

_serializer = None
_deserializer = None


def ddb() -> Any:
    return aws.client("dynamodb")


def table_name() -> str:
    return get_settings().table_name


def key(*parts: str) -> str:
    """``key("USER", uid)`` -> ``USER#<uid>``. Parts may not contain '#'."""
    for part in parts:
        if "#" in part:
            raise ValueError("key parts may not contain '#'")
    return "#".join(parts)


def _ser():
    global _serializer, _deserializer
    if _serializer is None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        _serializer, _deserializer = TypeSerializer(), TypeDeserializer()
    return _serializer, _deserializer


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    ser, _ = _ser()
    return {k: ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    if item is None:
        return None
    _, de = _ser()
    out = {k: de.deserialize(v) for k, v in item.items()}
    # Numbers come back as Decimal; every number we store is an integer.
    for k, v in out.items():
        if type(v).__name__ == "Decimal":
            out[k] = int(v)
    return out


def values(**kwargs: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=1) -> {':now': {'N': '1'}}."""
    ser, _ = _ser()
    return {f":{k}": ser.serialize(v) for k, v in kwargs.items()}


def get(pk: str, sk: str, consistent: bool = True) -> Optional[dict[str, Any]]:
    resp = ddb().get_item(
        TableName=table_name(), Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=consistent
    )
    return from_item(resp.get("Item"))


def query(
    key_condition: str,
    expr_values: dict[str, Any],
    index: Optional[str] = None,
    limit: int = 50,
    start_key: Optional[dict[str, Any]] = None,
    forward: bool = True,
    names: Optional[dict[str, str]] = None,
) -> tuple[list[dict[str, Any]], Optional[dict[str, Any]]]:
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": expr_values,
        "Limit": limit,
        "ScanIndexForward": forward,
    }
    if index:
        params["IndexName"] = index
    if start_key:
        params["ExclusiveStartKey"] = start_key
    if names:
        params["ExpressionAttributeNames"] = names
    resp = ddb().query(**params)
    return [from_item(i) for i in resp.get("Items", [])], resp.get("LastEvaluatedKey")


def transact(items: Iterable[dict[str, Any]]) -> None:
    """TransactWriteItems; callers map cancellation reasons to domain errors."""
    ddb().transact_write_items(TransactItems=list(items))


def cancellation_codes(exc: Exception) -> list[str]:
    """The per-item reasons of a TransactionCanceledException ('None', 'ConditionalCheckFailed', ...)."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [r.get("Code", "None") for r in reasons]


def is_condition_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


def encode_cursor(last_key: Optional[dict[str, Any]]) -> Optional[str]:
    """An opaque, tamper-evident pagination cursor."""
    if not last_key:
        return None
    import base64
    import json

    from chalicelib.core.crypto import sign_blob

    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(sign_blob(raw) + raw).decode().rstrip("=")


def decode_cursor(cursor: Optional[str]) -> Optional[dict[str, Any]]:
    if not cursor:
        return None
    import base64
    import json

    from chalicelib.core.crypto import verify_blob
    from chalicelib.core.errors import field_invalid

    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        raw = verify_blob(blob)
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError
        return value
    except Exception:
        raise field_invalid("cursor", "invalid_cursor", "The cursor is not valid; start from the first page.")
