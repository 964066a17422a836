"""The cashback wallet's items: every key and expression of the wallet is built here.

Keys (docs/access-patterns.md, Cashback wallet, has the whole chart):

- wallet head: `WALLET#<pid>` / `CLINIC#<cid>`; GSI2 `CASHDUE#<0..7>` / `<first lot date>#<pid>#<cid>`
  while a lot holds anything (the expiry job's sparse index)
- ledger entry (append-only): `WALLETLOG#<pid>#<cid>` / `E#<ulid>`
- a visit's paid projection: `CASHBASE#<bid>` / `BASE`
- cashback spent on one payment: `CASHPAY#<payment id>` / `SPEND`
- a clinic's outstanding cashback and totals: `CASHBACK#<cid>` / `TOTAL`; one UTC hour: `H#<YYYY-MM-DDTHH>`
"""
from __future__ import annotations

import zlib
from typing import Any, Optional

from chalicelib.core import db
from chalicelib.core.ids import new_id

DUE_SHARDS = 8
HEAD = "wallet:head"


def head_key(pid: str, cid: str) -> tuple[str, str]:
    return db.key("WALLET", pid), db.key("CLINIC", cid)


def log_pk(pid: str, cid: str) -> str:
    return db.key("WALLETLOG", pid, cid)


def base_key(bid: str) -> tuple[str, str]:
    return db.key("CASHBASE", bid), "BASE"


def spend_key(payment_id: str) -> tuple[str, str]:
    return db.key("CASHPAY", payment_id), "SPEND"


def clinic_pk(cid: str) -> str:
    return db.key("CASHBACK", cid)


def due_pk(shard: int) -> str:
    return f"CASHDUE#{shard}"


def shard_of(pid: str) -> int:
    return zlib.crc32(pid.encode()) % DUE_SHARDS


# ------------------------------------------------------------------ reads

def get_head(pid: str, cid: str) -> Optional[dict[str, Any]]:
    return db.get(*head_key(pid, cid))


def get_base(bid: str) -> Optional[dict[str, Any]]:
    return db.get(*base_key(bid))


def get_spend(payment_id: str) -> Optional[dict[str, Any]]:
    return db.get(*spend_key(payment_id))


def get_clinic_total(cid: str) -> Optional[dict[str, Any]]:
    return db.get(clinic_pk(cid), "TOTAL", consistent=False)


def wallets_page(pid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(db.key("WALLET", pid), "CLINIC#", limit, cursor)


def entries_page(pid: str, cid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    """Newest first."""
    return db.query_page(log_pk(pid, cid), "E#", limit, cursor, forward=False)


def all_entries(pid: str, cid: str) -> list[dict[str, Any]]:
    return db.query_prefix(log_pk(pid, cid), "E#", consistent=True)


def clinic_hours(cid: str, first_hour: str, last_hour: str) -> list[dict[str, Any]]:
    """Every hourly counter between two UTC hours (inclusive): at most 24 x 366 small items."""
    return db.query_all("PK = :pk AND SK BETWEEN :a AND :b",
                        db.values(pk=clinic_pk(cid), a=f"H#{first_hour}", b=f"H#{last_hour}"), cap=24 * 367)


def due_heads(shard: int, now_iso: str, limit: int) -> list[dict[str, Any]]:
    """Wallet heads whose first lot date has come (the sparse due index), oldest first, a batch."""
    items, _ = db.page("GSI2PK = :pk AND GSI2SK <= :now", db.values(pk=due_pk(shard), now=now_iso + "~"),
                       limit, None, index="GSI2")
    return items


# ------------------------------------------------------------------ items and ops

def head_item(head: dict[str, Any]) -> dict[str, Any]:
    """The head as stored: its keys, and the due-index keys while any lot holds something."""
    from chalicelib.payments import ledger

    pk, sk = head_key(head["patient_id"], head["clinic_id"])
    item = {k: v for k, v in head.items() if k not in ("GSI2PK", "GSI2SK")}
    item.update(PK=pk, SK=sk, type="wallet")
    first = ledger.next_date(head.get("lots") or {})
    if first:
        item["GSI2PK"] = due_pk(shard_of(head["patient_id"]))
        item["GSI2SK"] = f"{first}#{head['patient_id']}#{head['clinic_id']}"
    return item


def put_head_op(head: dict[str, Any], expected_version: int) -> dict[str, Any]:
    """Put the new head if the stored one is still at ``expected_version`` (0: there is none yet)."""
    return put_if_version(head_item(head), expected_version)


def put_if_version(item: dict[str, Any], expected_version: int) -> dict[str, Any]:
    """Put ``item`` if the stored one is still at ``expected_version`` (0: only if there is none)."""
    put: dict[str, Any] = {"TableName": db.table_name(), "Item": db.to_item(item)}
    if expected_version == 0:
        put["ConditionExpression"] = "attribute_not_exists(PK)"
    else:
        put["ConditionExpression"] = "#version = :expected"
        put["ExpressionAttributeNames"] = {"#version": "version"}
        put["ExpressionAttributeValues"] = db.values(expected=expected_version)
    return {"Put": put}


def entry_item(pid: str, cid: str, entry: dict[str, Any]) -> dict[str, Any]:
    eid = entry.get("entry_id") or new_id()
    return {"PK": log_pk(pid, cid), "SK": f"E#{eid}", "type": "wallet_entry", "entry_id": eid,
            "patient_id": pid, "clinic_id": cid, **{k: v for k, v in entry.items() if k != "entry_id"}}


def base_item(base: dict[str, Any]) -> dict[str, Any]:
    pk, sk = base_key(base["booking_id"])
    return {**base, "PK": pk, "SK": sk, "type": "cashback_base"}


def spend_item(rec: dict[str, Any]) -> dict[str, Any]:
    pk, sk = spend_key(rec["payment_id"])
    return {**rec, "PK": pk, "SK": sk, "type": "cashback_spend"}


COUNTERS = ("earned", "spent", "expired", "returned", "reversed")


def counter_ops(cid: str, hour: str, name: str, **deltas: int) -> list[tuple[str, dict[str, Any]]]:
    """ADD the deltas to the clinic's all-time totals (with the outstanding balance they change) and to
    the hour they happened in. ``name`` keeps item names unique within one transaction."""
    deltas = {k: int(v) for k, v in deltas.items() if v}
    if not deltas:
        return []
    outstanding = (deltas.get("earned", 0) + deltas.get("returned", 0) - deltas.get("spent", 0)
                   - deltas.get("expired", 0) - deltas.get("reversed", 0))

    def add(sk: str, values: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": k for i, k in enumerate(values)}
        expr = "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(values))) + " SET #t = :t, clinic_id = :cid"
        names["#t"] = "type"
        vals = {f"v{i}": v for i, v in enumerate(values.values())}
        return {"Update": {"TableName": db.table_name(), "Key": db.item_key(clinic_pk(cid), sk),
                           "UpdateExpression": expr, "ExpressionAttributeNames": names,
                           "ExpressionAttributeValues": db.values(**vals, t="cashback_counter", cid=cid)}}
    return [(f"counter:{name}:total", add("TOTAL", {**deltas, "outstanding": outstanding})),
            (f"counter:{name}:hour", add(f"H#{hour}", deltas))]


def mark_counted_op(payment_id: str) -> dict[str, Any]:
    """A spend is counted into its clinic's totals once (the event may be delivered twice)."""
    pk, sk = spend_key(payment_id)
    return {"Update": {"TableName": db.table_name(), "Key": db.item_key(pk, sk),
                       "UpdateExpression": "SET counted = :yes ADD #version :one",
                       "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(counted)",
                       "ExpressionAttributeNames": {"#version": "version"},
                       "ExpressionAttributeValues": db.values(yes=True, one=1)}}
