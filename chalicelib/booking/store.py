"""DynamoDB items of bookings. All key building for the feature lives here.

| item                | PK                                 | SK            | indexes |
|---------------------|------------------------------------|---------------|---------|
| booking             | BOOKING#<bid>                      | BOOKING       | GSI1 PATIENT#<pid> / <start>#<bid>; GSI2 HOLDS / <hold until>#<bid> (only while held, offered or proposed); GSI3 AGENDA#<did> / <start>#<bid>; GSI4 CAL#<cid> / <start>#<bid> |
| doctor time lock    | LOCK#D#<did>#<block start>         | LOCK          | |
| resource time lock  | LOCK#R#<rid>#<unit>#<block start>  | LOCK          | |
| resource use        | RESUSE#<branch>#<kind>             | <start>#<bid> | |
| idempotency record  | IDEM#<patient>#<key>               | IDEM          | |
| no-show strikes     | PATIENT#<pid>                      | STRIKES#<cid> | |
| care relationship   | CARE#<did>                         | PATIENT#<pid> | |
| waitlist entry      | WAIT#<did>                         | <created>#<wid> | GSI1 PATIENT#<pid> / WAIT#<wid> |
| chat message        | BOOKING#<bid>                      | MSG#<ulid>    | |
| urgent queue entry  | URGENT#<specialty>                 | <ulid>        | |
| urgent pointer      | URGENTPATIENT#<pid>                | URGENT        | |

Time locks are one item per 5-minute block: claiming time is a set of
``attribute_not_exists`` puts in the booking's transaction, so two bookings can
never hold the same minutes of a doctor or of a resource unit.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from chalicelib.core import clock, db

HOLD_INDEX = "HOLDS"


def booking_pk(bid: str) -> str:
    return db.key("BOOKING", bid)


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M")


def doctor_lock(did: str, block: datetime) -> str:
    return f"LOCK#D#{did}#{stamp(block)}"


def resource_lock(rid: str, unit: int, block: datetime) -> str:
    return f"LOCK#R#{rid}#{unit}#{stamp(block)}"


def resuse_pk(branch_id: str, kind: str) -> str:
    return f"RESUSE#{branch_id}#{kind}"



def index_keys(b: dict[str, Any]) -> dict[str, Any]:
    keys = {
        "GSI1PK": db.key("PATIENT", b["patient_id"]), "GSI1SK": f"{b['start_utc']}#{b['booking_id']}",
        "GSI3PK": db.key("AGENDA", b["doctor_id"]), "GSI3SK": f"{b['start_utc']}#{b['booking_id']}",
        "GSI4PK": db.key("CAL", b["clinic_id"]), "GSI4SK": f"{b['start_utc']}#{b['booking_id']}",
    }
    if b["status"] in ("held", "offered", "proposed") and b.get("hold_until"):
        keys.update(GSI2PK=HOLD_INDEX, GSI2SK=f"{b['hold_until']}#{b['booking_id']}")
    return keys


def booking_item(b: dict[str, Any]) -> dict[str, Any]:
    return {"PK": booking_pk(b["booking_id"]), "SK": "BOOKING", "type": "booking", **b, **index_keys(b)}


def get_booking(bid: str) -> Optional[dict[str, Any]]:
    return db.get(booking_pk(bid), "BOOKING")


def lock_ops(b: dict[str, Any], expires_at: int) -> list[dict[str, Any]]:
    return [{"Put": {"TableName": db.table_name(),
                     "Item": db.to_item({"PK": pk, "SK": "LOCK", "type": "time_lock", "booking_id": b["booking_id"],
                                         "expires_at": expires_at}),
                     "ConditionExpression": "attribute_not_exists(PK)"}} for pk in b["locks"]]


def unlock_ops(b: dict[str, Any], keep: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return [{"Delete": {"TableName": db.table_name(), "Key": db.item_key(pk, "LOCK"),
                        "ConditionExpression": "booking_id = :b",
                        "ExpressionAttributeValues": db.values(b=b["booking_id"])}}
            for pk in b["locks"] if pk not in keep]


def resuse_ops(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Put": {"TableName": db.table_name(), "Item": db.to_item({
        "PK": resuse_pk(b["branch_id"], r["kind"]), "SK": f"{b['start_utc']}#{b['booking_id']}", "type": "resource_use",
        "booking_id": b["booking_id"], "resource_id": r["resource_id"], "unit": r["unit"],
        "start_utc": b["start_utc"], "end_utc": b["end_utc"]})}} for r in b.get("resources", [])]


def unresuse_ops(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Delete": {"TableName": db.table_name(),
                        "Key": db.item_key(resuse_pk(b["branch_id"], r["kind"]), f"{b['start_utc']}#{b['booking_id']}")}}
            for r in b.get("resources", [])]


def transition_op(b: dict[str, Any], allowed: tuple[str, ...], changes: dict[str, Any],
                  remove: tuple[str, ...] = (), extra_condition: str = "",
                  extra_values: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Move a booking to a new state only from the states allowed, checked by the database."""
    names = {"#s": "status", "#v": "version"}
    sets = ["#v = #v + :one"]
    vals: dict[str, Any] = {"one": 1, **(extra_values or {})}
    for i, (k, v) in enumerate(changes.items()):
        names[f"#c{i}"] = k
        sets.append(f"#c{i} = :c{i}")
        vals[f"c{i}"] = v
    allowed_keys = []
    for i, s in enumerate(allowed):
        vals[f"a{i}"] = s
        allowed_keys.append(f":a{i}")
    expr = "SET " + ", ".join(sets)
    if remove:
        for j, r in enumerate(remove):
            names[f"#r{j}"] = r
        expr += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
    cond = f"#s IN ({', '.join(allowed_keys)})" + (f" AND {extra_condition}" if extra_condition else "")
    return {"Update": {"TableName": db.table_name(), "Key": db.item_key(booking_pk(b["booking_id"]), "BOOKING"),
                       "UpdateExpression": expr, "ConditionExpression": cond,
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": db.values(**vals)}}


def agenda(did: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    """Every booking of a doctor starting in [start, end] (bounded by the key range, paged to the end)."""
    return db.query_all("GSI3PK = :pk AND GSI3SK BETWEEN :a AND :b",
                        db.values(pk=db.key("AGENDA", did), a=start_iso, b=end_iso + "~"), index="GSI3")


def resource_use(branch_id: str, kind: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    return db.query_all("PK = :pk AND SK BETWEEN :a AND :b",
                        db.values(pk=resuse_pk(branch_id, kind), a=start_iso, b=end_iso + "~"))


def due_holds(now_iso: str, limit: int = 100) -> list[dict[str, Any]]:
    """One batch of the holds due by now, oldest first (the job takes the rest on its next round)."""
    items, _ = db.page("GSI2PK = :pk AND GSI2SK <= :now", db.values(pk=HOLD_INDEX, now=now_iso + "~"),
                       limit, None, index="GSI2")
    return items


def idem_pk(patient_id: str, key: str) -> str:
    import hashlib

    return f"IDEM#{patient_id}#{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def idem_op(patient_id: str, key: str, request_hash: str, bid: str, now: int) -> dict[str, Any]:
    return {"Put": {"TableName": db.table_name(), "Item": db.to_item({
        "PK": idem_pk(patient_id, key), "SK": "IDEM", "type": "idempotency", "booking_id": bid,
        "request_hash": request_hash, "expires_at": now + 24 * 3600}),
        "ConditionExpression": "attribute_not_exists(PK)"}}


def get_idem(patient_id: str, key: str) -> Optional[dict[str, Any]]:
    return db.get(idem_pk(patient_id, key), "IDEM")


def strikes_key(pid: str, cid: str) -> tuple[str, str]:
    return db.key("PATIENT", pid), db.key("STRIKES", cid)


def add_strike_op(pid: str, cid: str, when: int) -> dict[str, Any]:
    pk, sk = strikes_key(pid, cid)
    return {"Update": {"TableName": db.table_name(), "Key": db.item_key(pk, sk),
                       "UpdateExpression": "SET strikes = list_append(if_not_exists(strikes, :empty), :s), #t = :t",
                       "ExpressionAttributeNames": {"#t": "type"},
                       "ExpressionAttributeValues": db.values(empty=[], s=[when], t="strikes")}}


def care_op(did: str, pid: str, now: int) -> dict[str, Any]:
    return {"Put": {"TableName": db.table_name(), "Item": db.to_item({
        "PK": db.key("CARE", did), "SK": db.key("PATIENT", pid), "type": "care", "doctor_id": did,
        "patient_id": pid, "since": now})}}


def is_patient_of(did: str, pid: str) -> bool:
    return db.get(db.key("CARE", did), db.key("PATIENT", pid)) is not None


def waitlist(did: str) -> list[dict[str, Any]]:
    return db.query_prefix(db.key("WAIT", did), "")


def now_iso() -> str:
    return clock.iso(clock.now())
