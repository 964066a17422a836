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
    return {k: _plain(de.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """Numbers come back as Decimal, sets as set; every number we store is an integer."""
    kind = type(value).__name__
    if kind == "Decimal":
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


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
    filter_expression: Optional[str] = None,
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
    if filter_expression:
        params["FilterExpression"] = filter_expression
    resp = ddb().query(**params)
    return [from_item(i) for i in resp.get("Items", [])], resp.get("LastEvaluatedKey")


def transact(items: Iterable[dict[str, Any]]) -> None:
    """TransactWriteItems; callers map cancellation reasons to domain errors."""
    ddb().transact_write_items(TransactItems=list(items))


def transact_or(items: Iterable[dict[str, Any]], error: Exception) -> None:
    """TransactWriteItems; if a condition cancels it, raise ``error`` (other failures propagate)."""
    try:
        transact(items)
    except Exception as exc:
        if not cancellation_codes(exc):
            raise
        raise error


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


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


# ------------------------------------------------------------------ shared item operations

def _versioned_update_args(pk: str, sk: str, changes: dict[str, Any], expected_version: int,
                           remove: tuple[str, ...] = ()) -> dict[str, Any]:
    names = {f"#f{i}": k for i, k in enumerate(changes)}
    names["#version"] = "version"
    sets = [f"#f{i} = :v{i}" for i in range(len(changes))] + ["#version = :next"]
    expr = "SET " + ", ".join(sets)
    if remove:
        names.update({f"#r{j}": attr for j, attr in enumerate(remove)})
        expr += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
    return {
        "TableName": table_name(), "Key": {"PK": {"S": pk}, "SK": {"S": sk}},
        "UpdateExpression": expr,
        "ConditionExpression": "attribute_exists(PK) AND #version = :expected",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values(**{f"v{i}": v for i, v in enumerate(changes.values())},
                                            next=expected_version + 1, expected=expected_version),
    }


def update_versioned(pk: str, sk: str, changes: dict[str, Any], expected_version: int,
                     remove: tuple[str, ...] = ()) -> dict[str, Any]:
    """Optimistic update: applies only if the stored ``version`` is still the one read.
    Raises 409 ``version_conflict`` otherwise; returns the new item."""
    from chalicelib.core.errors import conflict

    try:
        resp = ddb().update_item(**_versioned_update_args(pk, sk, changes, expected_version, remove),
                                 ReturnValues="ALL_NEW")
    except Exception as exc:
        if is_condition_failure(exc):
            raise conflict("version_conflict")
        raise
    return from_item(resp["Attributes"])  # type: ignore[return-value]


def update_versioned_op(pk: str, sk: str, changes: dict[str, Any], expected_version: int) -> dict[str, Any]:
    """The same update as one item of a transaction."""
    return {"Update": _versioned_update_args(pk, sk, changes, expected_version)}


def put_new_op(item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": table_name(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(PK)"}}


def put_new(item: dict[str, Any]) -> None:
    ddb().put_item(**put_new_op(item)["Put"])


def query_page(pk: str, sk_prefix: str, limit: int, cursor: Optional[str], index: Optional[str] = None,
               filter_expression: Optional[str] = None, filter_values: Optional[dict[str, Any]] = None,
               filter_names: Optional[dict[str, str]] = None) -> tuple[list[dict[str, Any]], Optional[str]]:
    """One page of items under a partition key whose sort key starts with a prefix."""
    pk_attr, sk_attr = ("PK", "SK") if index is None else (f"{index}PK", f"{index}SK")
    key_values = values(pk=pk, pre=sk_prefix) if sk_prefix else values(pk=pk)
    condition = f"{pk_attr} = :pk" + (f" AND begins_with({sk_attr}, :pre)" if sk_prefix else "")
    items, last = query(condition, {**key_values, **(filter_values or {})}, index=index, limit=limit,
                        start_key=decode_cursor(cursor), names=filter_names, filter_expression=filter_expression)
    return items, encode_cursor(last)


def batch_get(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Up to 100 items by key in one BatchGetItem (retrying what DynamoDB leaves unprocessed)."""
    if not keys:
        return []
    request = {table_name(): {"Keys": [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in keys[:100]]}}
    found: list[dict[str, Any]] = []
    for _ in range(5):
        resp = ddb().batch_get_item(RequestItems=request)
        found += [from_item(i) for i in resp.get("Responses", {}).get(table_name(), [])]
        request = resp.get("UnprocessedKeys") or {}
        if not request:
            break
    return found  # type: ignore[return-value]
