"""Worlds built once through the API and written back for every later test that asks for the same one.

Most of a feature test's time went into building its starting point through the API: five sign-ups with
authenticator enrolments, two clinics onboarded, a schedule, a visit. ``remembered(name, build, clock)``
builds it the first time a test process asks for it and keeps a snapshot: every item of the table as stored,
the clock and the builder's result (tokens, ids). A later test that asks for the same world in the same
conditions gets the items written back into its own empty table, its clock set to the moment the world was
finished, and a deep copy of the result; from there the test runs as if it had built the world itself.

What makes a restored world the same world:
- the keys that sign tokens and hash codes are generated once per test process into one directory
  (``LOCAL_STATE_DIR``, set by ``tests.conftest.base_env``), so restored sessions and hashes stay valid; a
  test that uses another directory is another condition;
- the conditions are part of the snapshot's name: every setting the environment gives (except the per-test
  table, endpoints and ports), and whether DynamoDB is moto or DynamoDB Local;
- so is the moment the build starts from (a test that sets its clock to March builds a March world);
- only an empty table is snapshotted or restored: a test that wrote anything before asking builds the world
  itself, so nothing of another test's data can come back.

Outside the table a world leaves only SMS in moto's SNS (codes already used) and generated keys (above).
"""
from __future__ import annotations

import copy
import os
from datetime import datetime
from typing import Any, Callable, Optional

# settings that differ between tests without changing what a world is
# (LOCAL_STATE_DIR stays in: a world's tokens and hashes are valid only with the keys it was built with)
_PER_TEST = {"TABLE_NAME", "DYNAMODB_ENDPOINT", "STRIPE_API_BASE", "FCM_ENDPOINT", "AWS_ENDPOINT"}

Snapshot = tuple[list[dict[str, Any]], datetime, Any]
_WORLDS: dict[tuple[Any, ...], Snapshot] = {}
stats = {"built": 0, "restored": 0, "unshared": 0}


def _conditions() -> tuple[Any, ...]:
    from chalicelib.core.settings import Settings

    names = {f.env for f in Settings.model_fields.values()} - _PER_TEST
    given = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper() in names))
    return given, bool(os.environ.get("DYNAMODB_ENDPOINT"))


def _table() -> str:
    return os.environ["TABLE_NAME"]


def _empty() -> bool:
    from chalicelib.core import aws

    return not aws.client("dynamodb").scan(TableName=_table(), Limit=1, Select="COUNT")["Count"]


def scan() -> list[dict[str, Any]]:
    """Every item of the test's table, as stored (test tooling: a snapshot of a whole table)."""
    from chalicelib.core import aws

    ddb, items, kw = aws.client("dynamodb"), [], {"TableName": _table()}
    while True:
        resp = ddb.scan(**kw)
        items += resp["Items"]
        if not resp.get("LastEvaluatedKey"):
            return items
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def restore(items: list[dict[str, Any]]) -> None:
    from chalicelib.core import aws

    ddb = aws.client("dynamodb")
    for at in range(0, len(items), 25):
        pending: dict[str, Any] = {_table(): [{"PutRequest": {"Item": i}} for i in items[at:at + 25]]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def remembered(name: str, build: Callable[[], Any], fixed_clock,
               store: Optional[dict[tuple[Any, ...], Snapshot]] = None) -> Any:
    """``build()``'s result, built once per test process and conditions, and restored for later tests."""
    worlds = _WORLDS if store is None else store
    if not _empty():
        stats["unshared"] += 1
        return build()
    key = (name, fixed_clock.now(), _conditions())  # a world built from another moment is another world
    if key in worlds:
        items, at, result = worlds[key]
        restore(items)
        fixed_clock.set(at)
        stats["restored"] += 1
        return copy.deepcopy(result)
    result = build()
    worlds[key] = (scan(), fixed_clock.now(), copy.deepcopy(result))
    stats["built"] += 1
    return result
