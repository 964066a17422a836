"""moto's DynamoDB made faster and closer to DynamoDB for the unit tests' transactions.

moto 5 backs up every table a transaction touches with ``copy.deepcopy`` of the whole table before it
applies the transaction, so one TransactWriteItems costs time proportional to everything in the table: with
a few thousand items (a wallet test with 120 patients, a randomised month of a clinic) a transaction took
0.8 s and one test 5 minutes, all of it copying. And moto applies a transaction's items one by one with no
lock: two overlapping transactions from two threads can interleave, so both can fail or both half-apply,
which DynamoDB never does.

``install()`` changes three things and nothing of what moto checks or answers:
- the backup is of the items the transaction names (their state before it, or their absence), and a
  cancelled transaction puts exactly those back: the same outcome as restoring the whole table, since a
  transaction writes nothing else;
- transactions and single writes (put, update, delete, and so batch writes) of the DynamoDB backend run one
  at a time under one lock, so a transaction is atomic to every other write, as in DynamoDB;
- an attribute value's ``cast_value`` answers strings, binaries and booleans (their value itself, as moto's
  own property does after five type tests) without the tests: moto's queries sort and compare the keys of the
  whole partition or index through it, which was most of a big-data test's time.
Reads take no lock (DynamoDB's reads are not isolated from concurrent transactions either, except that they
never see half of one; a read racing a moto transaction can).
"""
from __future__ import annotations

import copy
import threading
from types import SimpleNamespace
from typing import Any

_LOCK = threading.RLock()
_PLAIN = frozenset({"S", "B", "BOOL"})  # the types whose cast value is the value itself
_installed: list[bool] = []


def install() -> None:
    if _installed:
        return
    from moto.dynamodb import models as ddb
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_deepcopy = copy.deepcopy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        # the whole-table backup becomes the table itself; the rollback below restores what was touched
        return value if isinstance(value, Table) else real_deepcopy(value, memo)

    real_cast = DynamoType.cast_value.fget

    def cast_value(self: Any) -> Any:
        return self.value if self.type in _PLAIN else real_cast(self)

    DynamoType.cast_value = property(cast_value)  # type: ignore[method-assign,assignment]
    ddb.copy = SimpleNamespace(deepcopy=deepcopy)  # type: ignore[attr-defined]
    backend = ddb.DynamoDBBackend
    transact = backend.transact_write_items

    def before(self: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
        saved = []
        for entry in transact_items:
            for op_type, op in entry.items():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                attrs = (op.get("Item") if op_type == "Put" else op.get("Key")) if table is not None else None
                if not attrs or table.hash_key_attr not in attrs:
                    continue
                h = DynamoType(attrs[table.hash_key_attr])
                r = None
                if table.range_key_attr is not None:
                    if table.range_key_attr not in attrs:
                        continue
                    r = DynamoType(attrs[table.range_key_attr])
                try:
                    current = table.get_item(h, r)
                except Exception:  # noqa: BLE001 - moto itself answers the malformed key below
                    continue
                saved.append((table, h, r, real_deepcopy(current)))
        return saved

    def put_back(table: Any, h: Any, r: Any, item: Any) -> None:
        if r is None:
            if item is None:
                table.items.pop(h, None)
            else:
                table.items[h] = item
            return
        if item is None:
            rows = table.items.get(h)
            if rows is not None:
                rows.pop(r, None)
                if not rows:
                    table.items.pop(h, None)
        else:
            table.items.setdefault(h, {})[r] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            saved = before(self, transact_items) if len(transact_items) <= 100 else []
            try:
                return transact(self, transact_items)
            except Exception:
                for table, h, r, item in reversed(saved):
                    put_back(table, h, r, item)
                raise

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item"):
        setattr(backend, name, _locked(getattr(backend, name)))
    _installed.append(True)


def _locked(method: Any) -> Any:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    write.__name__ = method.__name__
    write.__doc__ = method.__doc__
    return write
