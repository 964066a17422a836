"""The DynamoDB table handle and key helpers.

Items are written and read through the low-level client with plain Python
values; ``to_item``/``from_item`` convert them by boto3's rules, without importing boto3.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from chalicelib.core import aws
from chalicelib.core.settings import get_settings


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


# DynamoDB's AttributeValue JSON, converted here rather than with boto3's TypeSerializer: importing
# boto3 (for its serializer, or its session) costs a fresh process more than the rest of the app's first
# request (docs/benchmarks.md, cold start). The rules are boto3's: integers and Decimals are N, floats
# are refused (store minor units), None is NULL, sets are SS/NS/BS, bools BOOL, and N comes back as int.
_MAX_DIGITS = 38  # DynamoDB numbers have at most 38 significant digits


def _av(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": _number(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, dict):
        return {"M": {str(k): _av(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [_av(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if not value:
            raise TypeError("an empty set cannot be stored in DynamoDB")
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in sorted(value)]}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": sorted(bytes(v) for v in value)}
        raise TypeError("a set holds strings, integers or bytes of one kind")
    if type(value).__name__ == "Decimal":
        text = str(value)
        if text in ("Infinity", "-Infinity", "NaN", "sNaN"):
            raise TypeError(f"{text} cannot be stored in DynamoDB")
        return {"N": text}
    if isinstance(value, float):
        raise TypeError("floats are not stored: use integers (money in minor units)")
    raise TypeError(f"unsupported type for DynamoDB: {type(value).__name__}")


def _number(value: int) -> str:
    text = str(value)
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise TypeError("a number has more than 38 digits")
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # written by another tool as a decimal: every number we keep is whole
        from decimal import Decimal

        return int(Decimal(text))


def _plain(av: dict[str, Any]) -> Any:
    """One AttributeValue as a plain Python value (numbers int, sets lists)."""
    (kind, value), = av.items()
    if kind == "S":
        return value
    if kind == "N":
        return _int(value)
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "SS" or kind == "BS":
        return list(value)
    if kind == "NS":
        return [_int(v) for v in value]
    if kind == "B":
        return bytes(value)
    raise TypeError(f"unknown AttributeValue type {kind}")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _av(v) for k, v in values.items() if v is not None}


def from_item(item: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    if item is None:
        return None
    return {k: _plain(v) for k, v in item.items()}


def values(**kwargs: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=1) -> {':now': {'N': '1'}}."""
    return {f":{k}": _av(v) for k, v in kwargs.items()}


def get(pk: str, sk: str, consistent: bool = True) -> Optional[dict[str, Any]]:
    resp = ddb().get_item(
        TableName=table_name(), Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=consistent
    )
    return from_item(resp.get("Item"))


class ReadCapExceeded(Exception):
    """A read meant to see everything found more than its cap: the caller refuses loudly."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"more than {cap} items")
        self.cap = cap


def _query_params(key_condition: str, expr_values: dict[str, Any], index: Optional[str],
                  names: Optional[dict[str, str]], filter_expression: Optional[str], forward: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": expr_values,
        "ScanIndexForward": forward,
    }
    if index:
        params["IndexName"] = index
    if names:
        params["ExpressionAttributeNames"] = names
    if filter_expression:
        params["FilterExpression"] = filter_expression
    return params


def query_all(key_condition: str, expr_values: dict[str, Any], index: Optional[str] = None,
              names: Optional[dict[str, str]] = None, filter_expression: Optional[str] = None,
              forward: bool = True, cap: Optional[int] = None, consistent: bool = False) -> list[dict[str, Any]]:
    """Every item the query matches, paging to the end. With ``cap``, more than ``cap`` items raise
    ``ReadCapExceeded`` instead of acting on a part. This is the only way logic reads a range."""
    params = _query_params(key_condition, expr_values, index, names, filter_expression, forward)
    if consistent and not index:
        params["ConsistentRead"] = True
    out: list[dict[str, Any]] = []
    while True:
        resp = ddb().query(**params)
        out += [from_item(i) for i in resp.get("Items", [])]  # type: ignore[misc]
        if cap is not None and len(out) > cap:
            raise ReadCapExceeded(cap)
        last = resp.get("LastEvaluatedKey")
        if not last:
            return out
        params["ExclusiveStartKey"] = last


def query_count(key_condition: str, expr_values: dict[str, Any], index: Optional[str] = None,
                names: Optional[dict[str, str]] = None, filter_expression: Optional[str] = None) -> int:
    """How many items the query matches, counted to the end (a COUNT query, paged)."""
    params = _query_params(key_condition, expr_values, index, names, filter_expression, True)
    params["Select"] = "COUNT"
    total = 0
    while True:
        resp = ddb().query(**params)
        total += int(resp.get("Count", 0))
        last = resp.get("LastEvaluatedKey")
        if not last:
            return total
        params["ExclusiveStartKey"] = last


def page(key_condition: str, expr_values: dict[str, Any], limit: int, cursor: Optional[str],
         index: Optional[str] = None, names: Optional[dict[str, str]] = None,
         filter_expression: Optional[str] = None, forward: bool = True) -> tuple[list[dict[str, Any]], Optional[str]]:
    """One page shown to a person: at most ``limit`` items and a cursor bound to this very query.

    A cursor carries a digest of the index, key condition, values, filter and direction that issued it;
    on any other query (another city, another range, another list) or tampered, it is a 400."""
    params = _query_params(key_condition, expr_values, index, names, filter_expression, forward)
    binding = _binding(params)
    start = decode_cursor(cursor, binding)
    if limit < 1 or limit > 100:
        raise ValueError("a page holds 1 to 100 items")
    out: list[dict[str, Any]] = []
    last: Optional[dict[str, Any]] = start
    # With a filter a DynamoDB page can come back short or empty; keep reading until the page is
    # full or the range ends, so a client never sees an empty page with a cursor.
    while True:
        if last:
            params["ExclusiveStartKey"] = last
        params["Limit"] = limit - len(out)
        resp = ddb().query(**params)
        out += [from_item(i) for i in resp.get("Items", [])]  # type: ignore[misc]
        last = resp.get("LastEvaluatedKey")
        if not last or len(out) >= limit:
            break
    return out, encode_cursor(last, binding)


# Placeholders whose value moves with the clock (``:now``, the instant a list of upcoming visits or live
# grants is read at): a cursor is not bound to them, or its next page would be refused a second later.
MOVING_VALUES = (":now",)


def _binding(params: dict[str, Any]) -> str:
    import hashlib
    import json

    bound = {k: params.get(k) for k in ("IndexName", "KeyConditionExpression", "ExpressionAttributeValues",
                                         "ExpressionAttributeNames", "FilterExpression", "ScanIndexForward")}
    bound["ExpressionAttributeValues"] = {k: v for k, v in (bound["ExpressionAttributeValues"] or {}).items()
                                          if k not in MOVING_VALUES}
    return hashlib.sha256(json.dumps(bound, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TxTooLarge(Exception):
    """A transaction would hold more than DynamoDB's 100 items; refused before sending."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} items in one transaction")
        self.size = size


class TxCancelled(Exception):
    """A transaction that a condition (or a concurrent transaction) cancelled, with the names of the
    items that failed."""

    def __init__(self, failed: list[str], reasons: dict[str, str]) -> None:
        super().__init__(", ".join(failed) or "cancelled")
        self.failed = failed
        self.reasons = reasons

    def any(self, *prefixes: str) -> bool:
        return any(name.startswith(prefixes) for name in self.failed)

    def condition_failed(self, *prefixes: str) -> bool:
        """Whether an item so named failed its own condition (not merely a clash with another transaction)."""
        return any(name.startswith(prefixes) and code == "ConditionalCheckFailed"
                   for name, code in self.reasons.items())

    def only(self, *prefixes: str) -> bool:
        return bool(self.failed) and all(name.startswith(prefixes) for name in self.failed)


class Tx:
    """The one transaction builder: each item has a name, at most ``MAX_ITEMS`` are sent, and a
    cancellation reports the names of the items whose condition failed (never their positions)."""

    MAX_ITEMS = 100

    def __init__(self) -> None:
        self._ops: list[tuple[str, dict[str, Any]]] = []

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self._ops]

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self._ops)

    def add(self, name: str, op: dict[str, Any]) -> "Tx":
        self._ops.append((name, op))
        return self

    def extend(self, named: Iterable[tuple[str, dict[str, Any]]]) -> "Tx":
        for name, op in named:
            self.add(name, op)
        return self

    @staticmethod
    def _op(base: dict[str, Any], condition: Optional[str], expr_values: Optional[dict[str, Any]],
            names: Optional[dict[str, str]]) -> dict[str, Any]:
        optional = {"ConditionExpression": condition, "ExpressionAttributeValues": expr_values,
                    "ExpressionAttributeNames": names}
        return {"TableName": table_name(), **base, **{k: v for k, v in optional.items() if v}}

    def put(self, name: str, item: dict[str, Any], condition: Optional[str] = None,
            expr_values: Optional[dict[str, Any]] = None, names: Optional[dict[str, str]] = None) -> "Tx":
        return self.add(name, {"Put": self._op({"Item": to_item(item)}, condition, expr_values, names)})

    def put_new(self, name: str, item: dict[str, Any]) -> "Tx":
        return self.put(name, item, condition="attribute_not_exists(PK)")

    def delete(self, name: str, pk: str, sk: str, condition: Optional[str] = None,
               expr_values: Optional[dict[str, Any]] = None, names: Optional[dict[str, str]] = None) -> "Tx":
        return self.add(name, {"Delete": self._op({"Key": item_key(pk, sk)}, condition, expr_values, names)})

    def update(self, name: str, pk: str, sk: str, expression: str, condition: Optional[str] = None,
               expr_values: Optional[dict[str, Any]] = None, names: Optional[dict[str, str]] = None) -> "Tx":
        base = {"Key": item_key(pk, sk), "UpdateExpression": expression}
        return self.add(name, {"Update": self._op(base, condition, expr_values, names)})

    def check(self, name: str, pk: str, sk: str, condition: str, expr_values: Optional[dict[str, Any]] = None,
              names: Optional[dict[str, str]] = None) -> "Tx":
        return self.add(name, {"ConditionCheck": self._op({"Key": item_key(pk, sk)}, condition, expr_values, names)})

    def event(self, kind: str, data: dict[str, Any]) -> str:
        """Record what happened as an event item in this transaction; returns the event id."""
        from chalicelib.core import events

        item = events.event_item(kind, data)
        self.put_new(f"event:{kind}", item)
        return str(item["event_id"])

    def commit(self) -> None:
        if not self._ops:
            return
        if len(self._ops) > self.MAX_ITEMS:
            raise TxTooLarge(len(self._ops))
        try:
            ddb().transact_write_items(TransactItems=[op for _, op in self._ops])
        except Exception as exc:
            codes = cancellation_codes(exc)
            if not codes:
                raise
            pairs = zip(self._ops, codes, strict=False)
            reasons = {name: code for (name, _), code in pairs if code not in ("None", "")}
            raise TxCancelled(list(reasons), reasons) from None

    def commit_or(self, error: Exception) -> None:
        """Commit; if a condition cancels it, raise ``error`` instead (other failures propagate)."""
        try:
            self.commit()
        except TxCancelled:
            raise error from None


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def cancellation_codes(exc: Exception) -> list[str]:
    """The per-item reasons of a TransactionCanceledException ('None', 'ConditionalCheckFailed', ...)."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [r.get("Code", "None") for r in reasons]


def is_condition_failure(exc: Exception) -> bool:
    if isinstance(exc, TxCancelled):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


def encode_cursor(last_key: Optional[dict[str, Any]], binding: str = "") -> Optional[str]:
    """An opaque, tamper-evident pagination cursor, bound to the query that issued it."""
    if not last_key:
        return None
    import base64
    import json

    from chalicelib.core.crypto import sign_blob

    raw = json.dumps({"b": binding, "k": last_key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(sign_blob(raw) + raw).decode().rstrip("=")


def decode_cursor(cursor: Optional[str], binding: str = "") -> Optional[dict[str, Any]]:
    if not cursor:
        return None
    import base64
    import json

    from chalicelib.core.crypto import verify_blob
    from chalicelib.core.errors import AppError, FieldError

    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(verify_blob(blob))
        if not isinstance(value, dict) or not isinstance(value.get("k"), dict) or value.get("b") != binding:
            raise ValueError
        return value["k"]
    except Exception:
        raise AppError(code="invalid_cursor", status=400,
                       detail="The cursor is not valid for this list; start from the first page.",
                       errors=[FieldError("cursor", "invalid_cursor", "not a cursor of this list")]) from None


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
            raise conflict("version_conflict") from None
        raise
    return from_item(resp["Attributes"])  # type: ignore[return-value]


def update_versioned_op(pk: str, sk: str, changes: dict[str, Any], expected_version: int) -> dict[str, Any]:
    """The same update as one item of a transaction."""
    return {"Update": _versioned_update_args(pk, sk, changes, expected_version)}


def put_new_op(item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": table_name(), "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(PK)"}}


def put_new(item: dict[str, Any]) -> None:
    ddb().put_item(**put_new_op(item)["Put"])


def query_page(pk: str, sk_prefix: str, limit: int, cursor: Optional[str], index: Optional[str] = None,
               filter_expression: Optional[str] = None, filter_values: Optional[dict[str, Any]] = None,
               filter_names: Optional[dict[str, str]] = None,
               forward: bool = True) -> tuple[list[dict[str, Any]], Optional[str]]:
    """One page of items under a partition key whose sort key starts with a prefix."""
    condition, key_values = prefix_condition(pk, sk_prefix, index)
    return page(condition, {**key_values, **(filter_values or {})}, limit, cursor, index=index, names=filter_names,
                filter_expression=filter_expression, forward=forward)


def query_prefix(pk: str, sk_prefix: str, index: Optional[str] = None, cap: Optional[int] = None,
                 consistent: bool = False) -> list[dict[str, Any]]:
    """Every item under a partition key whose sort key starts with a prefix (paged to the end)."""
    condition, key_values = prefix_condition(pk, sk_prefix, index)
    return query_all(condition, key_values, index=index, cap=cap, consistent=consistent)


def prefix_condition(pk: str, sk_prefix: str, index: Optional[str] = None) -> tuple[str, dict[str, Any]]:
    pk_attr, sk_attr = ("PK", "SK") if index is None else (f"{index}PK", f"{index}SK")
    if sk_prefix:
        return f"{pk_attr} = :pk AND begins_with({sk_attr}, :pre)", values(pk=pk, pre=sk_prefix)
    return f"{pk_attr} = :pk", values(pk=pk)


def batch_get(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Items by key, 100 per BatchGetItem, retrying what DynamoDB leaves unprocessed; never a part."""
    found: list[dict[str, Any]] = []
    unique = list(dict.fromkeys(keys))
    for at in range(0, len(unique), 100):
        request: dict[str, Any] = {table_name(): {"Keys": [item_key(pk, sk) for pk, sk in unique[at:at + 100]],
                                                  "ConsistentRead": True}}
        for _ in range(8):
            resp = ddb().batch_get_item(RequestItems=request)
            found += [from_item(i) for i in resp.get("Responses", {}).get(table_name(), [])]  # type: ignore[misc]
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                break
        if request:
            raise RuntimeError("DynamoDB left keys unprocessed after retries")
    return found
