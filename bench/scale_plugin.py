"""A pytest plugin for bench/scale.py: which partitions each operation's DynamoDB calls touch, and how many units.

Loaded with ``-p bench.scale_plugin`` into a run of tests/integration/test_call_budgets.py (the budget world:
every operation of openapi.yaml, once, as the right role, at realistic data sizes, on DynamoDB Local). For
each measured request (``World.call`` / ``World.raw`` with the label "ok") it records, per DynamoDB call:

- the consumed capacity Amazon's engine reports (``ReturnConsumedCapacity=INDEXES`` is added to every call);
- the partition each unit lands on: the table's ``PK`` of the items read or written, and for a secondary
  index the ``GSInPK`` the query names, or, for a write, the index partitions the item leaves and enters
  (read with an unhooked client right before and right after the call).

Units of one call on one index are split evenly over the partitions it touched there. The result, a JSON
file named by ``SCALE_OUT``: ``{operationId: {"<index>|<partition template>": {"r": units, "w": units}}}``.
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections import defaultdict
from typing import Any, Optional

import pytest

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
INDEXES = ("GSI1", "GSI2", "GSI3", "GSI4")

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_HEXISH = re.compile(r"^[0-9a-fA-F\-_=+/]{16,}$|^[A-Za-z0-9_\-]{22,}$")
_NUMBER = re.compile(r"^\+?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def template(value: str) -> str:
    """A partition value with its ids taken out: ``BOOKING#01J...`` -> ``BOOKING#<id>``."""
    parts = value.split("#")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        prev = parts[i - 1]
        if _ULID.match(part) or _HEXISH.match(part):
            out.append("<id>")
        elif _NUMBER.match(part):
            out.append("<n>" if len(part) <= 2 else "<id>")
        elif _DATE.match(part):
            out.append("<date>")
        elif prev == "CITY":
            out.append("<city>")
        elif prev in ("QUEUE", "URGENT", "DUTY", "SPECIALTY"):
            out.append("<specialty>")
        elif prev == "CLINICS":
            out.append("<status>")
        elif prev.startswith("RESUSE") or (i >= 2 and parts[0] == "RESUSE"):
            out.append("<kind>" if i == len(parts) - 1 else "<id>")
        else:
            out.append(part if len(part) <= 24 and part.isalpha() else "<id>")
    return "#".join(out)


def _s(attr: Any) -> Optional[str]:
    if isinstance(attr, dict):
        return attr.get("S")
    return attr if isinstance(attr, str) else None


class Recorder:
    def __init__(self) -> None:
        self.op: Optional[str] = None
        self.active = False
        self.pending = threading.local()
        self.units: dict[str, dict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(lambda: {"r": 0.0, "w": 0.0}))
        self._raw: Any = None
        self.drained = False

    # ------------------------------------------------------------------ an unhooked client for before/after reads

    def raw(self) -> Any:
        if self._raw is None:
            import boto3

            from chalicelib.core.settings import get_settings

            s = get_settings()
            self._raw = boto3.session.Session().client(
                "dynamodb", region_name=s.aws_region, endpoint_url=s.dynamodb_endpoint)
        return self._raw

    def _index_keys(self, table: str, key: dict) -> dict[str, Optional[str]]:
        got = self.raw().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
        return {ix: _s(got.get(f"{ix}PK")) for ix in INDEXES}

    @staticmethod
    def _write_targets(name: str, params: dict) -> list[tuple[str, dict]]:
        """(table, key) of every item a write names."""
        out: list[tuple[str, dict]] = []
        if name == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                for kind, body in entry.items():
                    if kind == "ConditionCheck":
                        continue
                    key = body.get("Key") or {k: body["Item"][k] for k in ("PK", "SK")}
                    out.append((body["TableName"], key))
        elif name == "BatchWriteItem":
            for table, reqs in params.get("RequestItems", {}).items():
                for r in reqs:
                    if "PutRequest" in r:
                        out.append((table, {k: r["PutRequest"]["Item"][k] for k in ("PK", "SK")}))
                    else:
                        out.append((table, r["DeleteRequest"]["Key"]))
        elif name == "PutItem":
            out.append((params["TableName"], {k: params["Item"][k] for k in ("PK", "SK")}))
        else:
            out.append((params["TableName"], params["Key"]))
        return out

    # ------------------------------------------------------------------ botocore hooks

    def before(self, params: dict, model: Any, **_: Any) -> None:
        if not self.active or model.name in ("DescribeTable", "CreateTable", "UpdateTimeToLive"):
            self.pending.call = None
            return
        params["ReturnConsumedCapacity"] = "INDEXES"
        before: list[tuple[str, dict, dict]] = []
        if model.name in WRITES:
            for table, key in self._write_targets(model.name, params):
                before.append((table, key, self._index_keys(table, key)))
        self.pending.call = (model.name, json.loads(json.dumps(params, default=str)), before)

    def after(self, parsed: dict, model: Any, **_: Any) -> None:
        call = getattr(self.pending, "call", None)
        self.pending.call = None
        if not call or not self.active or self.op is None:
            return
        name, params, before = call
        consumed = parsed.get("ConsumedCapacity")
        if not consumed:
            return
        consumed = consumed if isinstance(consumed, list) else [consumed]
        kind = "w" if name in WRITES else "r"
        touched: dict[str, list[str]] = defaultdict(list)  # index name ("table", "GSI2") -> partitions
        if name in WRITES:
            for table, key, old in before:
                touched["table"].append(_s(key["PK"]) or "")
                new = self._index_keys(table, key)
                for ix in INDEXES:
                    for value in {old[ix], new[ix]} - {None}:
                        touched[ix].append(value)  # type: ignore[arg-type]
        elif name in ("Query",):
            vals = params.get("ExpressionAttributeValues", {})
            cond = params.get("KeyConditionExpression", "")
            m = re.search(r"(\w+|#\w+)\s*=\s*(:\w+)", cond)
            value = _s(vals.get(m.group(2))) if m else None
            touched[params.get("IndexName") or "table"].append(value or "?")
        elif name == "GetItem":
            touched["table"].append(_s(params["Key"]["PK"]) or "")
        elif name == "BatchGetItem":
            for spec in params.get("RequestItems", {}).values():
                touched["table"].extend(_s(k["PK"]) or "" for k in spec["Keys"])
        elif name == "TransactGetItems":
            touched["table"].extend(_s(e["Get"]["Key"]["PK"]) or "" for e in params.get("TransactItems", []))
        for c in consumed:
            parts = [("table", (c.get("Table") or {}).get("CapacityUnits", 0.0))]
            parts += [(ix, v.get("CapacityUnits", 0.0)) for ix, v in (c.get("GlobalSecondaryIndexes") or {}).items()]
            if not c.get("Table") and not c.get("GlobalSecondaryIndexes"):
                parts = [("table", c.get("CapacityUnits", 0.0))]
            for ix, units in parts:
                where = touched.get(ix) or ["?"]
                for value in where:
                    self.units[self.op][f"{ix}|{template(value)}"][kind] += units / len(where)

    def dump(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump({op: dict(keys) for op, keys in self.units.items()}, fh, indent=1, sort_keys=True)


RECORDER = Recorder()


def pytest_configure(config: pytest.Config) -> None:
    from chalicelib.core import aws
    from tests.integration import budget_world

    aws.add_hook("before-parameter-build.dynamodb", RECORDER.before)
    aws.add_hook("after-call.dynamodb", RECORDER.after)

    def measured(original):
        def wrapper(self, *args, **kwargs):
            label = kwargs.get("label", "ok")
            RECORDER.active = label == "ok"
            try:
                return original(self, *args, **kwargs)
            finally:
                RECORDER.active = False
        return wrapper

    budget_world.World.call = measured(budget_world.World.call)  # type: ignore[method-assign]
    budget_world.World.raw = measured(budget_world.World.raw)  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    callspec = getattr(item, "callspec", None)
    RECORDER.op = callspec.params.get("op") if callspec else None
    if RECORDER.op and not RECORDER.drained:
        from chalicelib import bootstrap

        bootstrap.outbox().drain(rounds=1000)  # the world's own backlog, unrecorded
        RECORDER.drained = True
    yield
    if RECORDER.op:
        # the follow-ups of the events the operation wrote (waitlist offers, messages) are its load too
        from chalicelib import bootstrap

        RECORDER.active = True
        try:
            bootstrap.outbox().drain()
        finally:
            RECORDER.active = False
    RECORDER.op = None


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("SCALE_OUT")
    if out:
        RECORDER.dump(out)
