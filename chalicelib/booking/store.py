"""DynamoDB items of bookings. All key building for the feature lives here.

| item                | PK                                 | SK              |
|---------------------|------------------------------------|-----------------|
| booking             | BOOKING#<bid>                      | BOOKING         |
| doctor time lock    | LOCK#D#<did>#<block start>         | LOCK            |
| resource time lock  | LOCK#R#<rid>#<unit>#<block start>  | LOCK            |
| patient time lock   | LOCK#P#<pid>#<block start>         | LOCK            |
| visit counter       | PATIENT#<pid>                      | VISITS#<cid>#DOCTOR#<did> / VISITS#<cid>#DAY#<local day> |
| resource use        | RESUSE#<branch>#<kind>             | <start>#<bid>   |
| idempotency record  | IDEM#<patient>#<key>               | IDEM            |
| no-show strikes     | PATIENT#<pid>                      | STRIKES#<cid>   |
| care relationship   | CARE#<did>                         | PATIENT#<pid>   |
| waitlist entry      | WAIT#<did>                         | <created>#<wid> |
| chat message        | BOOKING#<bid>                      | MSG#<ulid>      |
| urgent queue entry  | URGENT#<specialty>                 | <ulid>          |
| urgent pointer      | URGENTPATIENT#<pid>                | URGENT          |

Indexes:
- booking: GSI1 PATIENT#<pid> / <start>#<bid>; GSI2 HOLDS#<0..7> / <hold until>#<bid> (only while held, offered
  or proposed); GSI3 AGENDA#<did> / <start>#<bid>; GSI4 CAL#<cid> / <start>#<bid>
- waitlist entry: GSI1 PATIENT#<pid> / WAIT#<wid>; GSI3 WAITING#<did> / <date_to>#<created>#<wid> (only
  while waiting)
- urgent queue entry: GSI2 QUEUE#<specialty> / <ulid> (only while waiting)

A waitlist entry is in the GSI3 "waiting" index only while it waits, keyed by its last local day, so
offering freed time reads only entries that still wait and whose dates have not passed; closed
entries (booked, left) drop out and expire (TTL) after their dates.

Time locks are one item per 5-minute block: claiming time is a set of
``attribute_not_exists`` puts in the booking's transaction, so two bookings can
never hold the same minutes of a doctor or of a resource unit.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from chalicelib.core import clock, db

# Holds that lapse, in HOLD_SHARDS partitions of GSI2 by booking id: one platform-wide "HOLDS" would pass 10 % of
# a partition's writes at the load model's peak (docs/scale.md, bench/scale.py).
HOLD_SHARDS = 8


def hold_index(bid: str) -> str:
    import zlib

    return f"HOLDS#{zlib.crc32(bid.encode()) % HOLD_SHARDS}"


def booking_pk(bid: str) -> str:
    return db.key("BOOKING", bid)


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M")


def doctor_lock(did: str, block: datetime) -> str:
    return f"LOCK#D#{did}#{stamp(block)}"


def resource_lock(rid: str, unit: int, block: datetime) -> str:
    return f"LOCK#R#{rid}#{unit}#{stamp(block)}"


def patient_lock(pid: str, block: datetime) -> str:
    """A patient's 5-minute block: one patient is never in two visits at once (any doctor, any clinic)."""
    return f"LOCK#P#{pid}#{stamp(block)}"


# ------------------------------------------------------------------ per-patient visit limits

def doctor_counter_key(pid: str, cid: str, did: str) -> tuple[str, str]:
    """The patient's visits with one doctor in one clinic: ``visits`` maps booking id -> end (UTC)."""
    return db.key("PATIENT", pid), f"VISITS#{cid}#DOCTOR#{did}"


def day_counter_key(pid: str, cid: str, local_day: str) -> tuple[str, str]:
    """The patient's visits in one clinic on one local day: ``visits`` maps booking id -> end (UTC)."""
    return db.key("PATIENT", pid), f"VISITS#{cid}#DAY#{local_day}"


def counter_put_op(key: tuple[str, str], seen: Optional[dict[str, Any]], visits: dict[str, str],
                   expires_at: int) -> dict[str, Any]:
    """Write a counter's visits only if nobody changed it since it was read (``version``), so two
    bookings of one patient racing each other cannot both pass the limit."""
    version = int(seen.get("version", 0)) if seen else 0
    item = {"PK": key[0], "SK": key[1], "type": "visit_counter", "visits": visits, "version": version + 1,
            "expires_at": expires_at}
    put: dict[str, Any] = {"TableName": db.table_name(), "Item": db.to_item(item)}
    if seen:
        put.update(ConditionExpression="version = :seen", ExpressionAttributeValues=db.values(seen=version))
    else:
        put["ConditionExpression"] = "attribute_not_exists(PK)"
    return {"Put": put}


def counter_release_ops(b: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Take a booking out of the counters it was counted in (idempotent; bumps the version so a racing
    booking that read the old count retries)."""
    return [(f"uncount:{sk}", {"Update": {
        "TableName": db.table_name(), "Key": db.item_key(pk, sk),
        "UpdateExpression": "REMOVE visits.#b ADD version :one",
        "ConditionExpression": "attribute_exists(visits)",
        "ExpressionAttributeNames": {"#b": b["booking_id"]}, "ExpressionAttributeValues": db.values(one=1)}})
        for pk, sk in (tuple(k) for k in b.get("counted_in", []))]


def resuse_pk(branch_id: str, kind: str) -> str:
    return f"RESUSE#{branch_id}#{kind}"



def index_keys(b: dict[str, Any]) -> dict[str, Any]:
    keys = {
        "GSI1PK": db.key("PATIENT", b["patient_id"]), "GSI1SK": f"{b['start_utc']}#{b['booking_id']}",
        "GSI3PK": db.key("AGENDA", b["doctor_id"]), "GSI3SK": f"{b['start_utc']}#{b['booking_id']}",
        "GSI4PK": db.key("CAL", b["clinic_id"]), "GSI4SK": f"{b['start_utc']}#{b['booking_id']}",
    }
    if b["status"] in ("held", "offered", "proposed") and b.get("hold_until"):
        keys.update(GSI2PK=hold_index(b["booking_id"]), GSI2SK=f"{b['hold_until']}#{b['booking_id']}")
    return keys


def booking_item(b: dict[str, Any]) -> dict[str, Any]:
    return {"PK": booking_pk(b["booking_id"]), "SK": "BOOKING", "type": "booking", **b, **index_keys(b),
            "resource_ids": resource_ids(b)}


def resource_ids(b: dict[str, Any]) -> list[str]:
    """Kept beside ``resources`` so a calendar can filter by resource in DynamoDB (``contains``)."""
    return sorted({r["resource_id"] for r in b.get("resources", [])})


def get_booking(bid: str) -> Optional[dict[str, Any]]:
    return db.get(booking_pk(bid), "BOOKING")


def lock_ops(b: dict[str, Any], expires_at: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"lock:{pk}", {"Put": {
        "TableName": db.table_name(),
        "Item": db.to_item({"PK": pk, "SK": "LOCK", "type": "time_lock", "booking_id": b["booking_id"],
                            "expires_at": expires_at}),
        "ConditionExpression": "attribute_not_exists(PK)"}}) for pk in b["locks"]]


def unlock_ops(b: dict[str, Any], keep: frozenset[str] = frozenset(),
               locks: Optional[list[str]] = None) -> list[tuple[str, dict[str, Any]]]:
    """Delete the booking's own locks (never another booking's: the condition names the owner)."""
    return [(f"unlock:{pk}", {"Delete": {"TableName": db.table_name(), "Key": db.item_key(pk, "LOCK"),
                                         "ConditionExpression": "attribute_not_exists(PK) OR booking_id = :b",
                                         "ExpressionAttributeValues": db.values(b=b["booking_id"])}})
            for pk in (b["locks"] if locks is None else locks) if pk not in keep]


def resuse_ops(b: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"resuse:{r['kind']}", {"Put": {"TableName": db.table_name(), "Item": db.to_item({
        "PK": resuse_pk(b["branch_id"], r["kind"]), "SK": f"{b['start_utc']}#{b['booking_id']}", "type": "resource_use",
        "booking_id": b["booking_id"], "resource_id": r["resource_id"], "unit": r["unit"],
        "start_utc": b["start_utc"], "end_utc": b["end_utc"],
        # a hold's use of a room lapses with the hold, so free slots can tell without reading the booking
        "hold_until": b.get("hold_until") if b["status"] in ("held", "offered", "proposed") else None})}})
        for r in b.get("resources", [])]


def resuse_hold_ops(b: dict[str, Any], hold_until: Optional[str]) -> list[tuple[str, dict[str, Any]]]:
    """Keep the resource uses' hold in step with the booking's (a new hold, or none once confirmed)."""
    ops = []
    for r in b.get("resources", []):
        key = db.item_key(resuse_pk(b["branch_id"], r["kind"]), f"{b['start_utc']}#{b['booking_id']}")
        update: dict[str, Any] = {"TableName": db.table_name(), "Key": key,
                                  "ConditionExpression": "attribute_exists(PK)"}
        if hold_until:
            update.update(UpdateExpression="SET hold_until = :h", ExpressionAttributeValues=db.values(h=hold_until))
        else:
            update["UpdateExpression"] = "REMOVE hold_until"
        ops.append((f"resuse_hold:{r['kind']}", {"Update": update}))
    return ops


def unresuse_ops(b: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"unresuse:{r['kind']}", {"Delete": {
        "TableName": db.table_name(),
        "Key": db.item_key(resuse_pk(b["branch_id"], r["kind"]), f"{b['start_utc']}#{b['booking_id']}")}})
        for r in b.get("resources", [])]


def release_locks(booking_id: str, locks: list[str], keep: frozenset[str]) -> int:
    """Delete leftover locks of a booking (after a reschedule too long for one transaction), 100 at a
    time, each only if the booking still owns it and no longer needs it. Idempotent."""
    todo = [pk for pk in locks if pk not in keep]
    for at in range(0, len(todo), db.Tx.MAX_ITEMS):
        tx = db.Tx()
        tx.extend(unlock_ops({"booking_id": booking_id, "locks": todo[at:at + db.Tx.MAX_ITEMS]}))
        tx.commit()
    return len(todo)


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


def new_booking_op(b: dict[str, Any]) -> dict[str, Any]:
    return db.put_new_op(booking_item(b))


def agenda(did: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    """Every booking of a doctor starting in [start, end] (bounded by the key range, paged to the end)."""
    return db.query_all("GSI3PK = :pk AND GSI3SK BETWEEN :a AND :b",
                        db.values(pk=db.key("AGENDA", did), a=start_iso, b=end_iso + "~"), index="GSI3")


def patient_visits(pid: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    """A patient's bookings starting in [start, end] (bounded by the key range, paged to the end)."""
    items = db.query_all("GSI1PK = :pk AND GSI1SK BETWEEN :a AND :b",
                         db.values(pk=db.key("PATIENT", pid), a=start_iso, b=end_iso + "~"), index="GSI1")
    return [i for i in items if i.get("type") == "booking"]


def clinic_bookings_of_doctor(cid: str, did: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    """A doctor's bookings in one clinic starting in [start, end] (the clinic's calendar, filtered)."""
    return db.query_all("GSI4PK = :pk AND GSI4SK BETWEEN :a AND :b",
                        db.values(pk=db.key("CAL", cid), a=start_iso, b=end_iso + "~", d=did), index="GSI4",
                        filter_expression="doctor_id = :d")


def resource_use(branch_id: str, kind: str, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
    return db.query_all("PK = :pk AND SK BETWEEN :a AND :b",
                        db.values(pk=resuse_pk(branch_id, kind), a=start_iso, b=end_iso + "~"))


def due_holds(now_iso: str, limit: int = 100) -> list[dict[str, Any]]:
    """One batch of the holds due by now, oldest first across the shards (the job takes the rest on its next
    round): at most ``limit`` from each shard, merged, the oldest ``limit`` kept."""
    due: list[dict[str, Any]] = []
    for shard in range(HOLD_SHARDS):
        items, _ = db.page("GSI2PK = :pk AND GSI2SK <= :now", db.values(pk=f"HOLDS#{shard}", now=now_iso + "~"),
                           limit, None, index="GSI2")
        due.extend(items)
    due.sort(key=lambda b: (b.get("hold_until") or "", b["booking_id"]))
    return due[:limit]


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


# ------------------------------------------------------------------ waitlist

def waitlist_item(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry``: waitlist_id, patient_id, doctor_id, clinic_id, service_id, date_from, date_to, created_at."""
    return {"PK": db.key("WAIT", entry["doctor_id"]), "SK": f"{entry['created_at']}#{entry['waitlist_id']}",
            "type": "waitlist", **entry, "status": "waiting", "offered_starts": [],
            "GSI1PK": db.key("PATIENT", entry["patient_id"]), "GSI1SK": db.key("WAIT", entry["waitlist_id"]),
            **_waiting_keys(entry), "expires_at": _day_end_epoch(entry["date_to"]) + 30 * 86400}


def _waiting_keys(w: dict[str, Any]) -> dict[str, str]:
    return {"GSI3PK": db.key("WAITING", w["doctor_id"]),
            "GSI3SK": f"{w['date_to']}#{w['created_at']}#{w['waitlist_id']}"}


def _day_end_epoch(day_iso: str) -> int:
    from datetime import date, timezone

    d = date.fromisoformat(day_iso)
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) + 2 * 86400


def open_waitlist(did: str, from_day: str) -> list[dict[str, Any]]:
    """Entries of a doctor that still wait and whose last day is not before ``from_day``, oldest first
    within the index order; bounded by the key range, paged to the end."""
    items = db.query_all("GSI3PK = :pk AND GSI3SK >= :d", db.values(pk=db.key("WAITING", did), d=from_day),
                         index="GSI3")
    return sorted(items, key=lambda w: (w["created_at"], w["waitlist_id"]))


def offer_waitlist_op(w: dict[str, Any], start_utc: str) -> dict[str, Any]:
    """Take an entry out of the waiting index for an offer, only if it still waits."""
    return {"Update": {"TableName": db.table_name(), "Key": db.item_key(w["PK"], w["SK"]),
                       "UpdateExpression": "SET offered_starts = list_append(offered_starts, :s), #st = :offered "
                                           "REMOVE GSI3PK, GSI3SK",
                       "ConditionExpression": "#st = :waiting",
                       "ExpressionAttributeNames": {"#st": "status"},
                       "ExpressionAttributeValues": db.values(s=[start_utc], offered="offered", waiting="waiting")}}


def settle_waitlist(entry_key: dict[str, str], outcome: str) -> bool:
    """After an offer: 'booked' closes the entry; 'waiting' puts it back in the index. Conditional on the
    entry still existing and being offered, so a patient who left the list is never resurrected."""
    names = {"#st": "status"}
    if outcome == "waiting":
        current = db.get(entry_key["PK"], entry_key["SK"])
        if current is None or current.get("status") != "offered":
            return False
        expr = "SET #st = :new, GSI3PK = :gpk, GSI3SK = :gsk"
        vals = db.values(new="waiting", offered="offered", gpk=_waiting_keys(current)["GSI3PK"],
                         gsk=_waiting_keys(current)["GSI3SK"])
    else:
        expr = "SET #st = :new"
        vals = db.values(new=outcome, offered="offered")
    try:
        db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(entry_key["PK"], entry_key["SK"]),
                             UpdateExpression=expr, ConditionExpression="attribute_exists(PK) AND #st = :offered",
                             ExpressionAttributeNames=names, ExpressionAttributeValues=vals)
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    return True


def patient_waitlist_page(pid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(db.key("PATIENT", pid), "WAIT#", limit, cursor, index="GSI1")


def patient_waitlist_entry(pid: str, wid: str) -> Optional[dict[str, Any]]:
    items = db.query_prefix(db.key("PATIENT", pid), db.key("WAIT", wid), index="GSI1", cap=1)
    return items[0] if items else None


def delete_waitlist_entry(w: dict[str, Any]) -> bool:
    try:
        db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(w["PK"], w["SK"]),
                             ConditionExpression="patient_id = :p",
                             ExpressionAttributeValues=db.values(p=w["patient_id"]))
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    return True


# ------------------------------------------------------------------ chat

def message_item(bid: str, mid: str, author_id: str, author_role: str, text: str, sent_at: str) -> dict[str, Any]:
    return {"PK": booking_pk(bid), "SK": db.key("MSG", mid), "type": "message", "message_id": mid,
            "booking_id": bid, "author_id": author_id, "author_role": author_role, "text": text, "sent_at": sent_at}


def messages_page(bid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(booking_pk(bid), "MSG#", limit, cursor)


# ------------------------------------------------------------------ urgent queue

def duty_on_shift(specialty: str, now_iso: str) -> list[dict[str, Any]]:
    """Duty shifts of a specialty that have not ended (a timeline keyed by the shift's end)."""
    return db.query_all("GSI3PK = :pk AND GSI3SK > :now", db.values(pk=db.key("DUTY", specialty), now=now_iso),
                        index="GSI3")


def urgent_entry_item(entry: dict[str, Any]) -> dict[str, Any]:
    return {"PK": db.key("URGENT", entry["specialty"]), "SK": entry["entry_id"], "type": "urgent_entry", **entry,
            "status": "waiting",
            # only waiting entries are in the sparse index: position and "take next" read nobody else
            "GSI2PK": db.key("QUEUE", entry["specialty"]), "GSI2SK": entry["entry_id"]}


def urgent_pointer_key(pid: str) -> tuple[str, str]:
    return db.key("URGENTPATIENT", pid), "URGENT"


def urgent_pointer_item(pid: str, specialty: str, eid: str) -> dict[str, Any]:
    pk, sk = urgent_pointer_key(pid)
    return {"PK": pk, "SK": sk, "type": "urgent_pointer", "specialty": specialty, "entry_id": eid,
            "status": "waiting"}


def join_queue_tx(tx: db.Tx, entry: dict[str, Any]) -> None:
    """Items: ``entry``, ``pointer``. The patient's one place in a queue: a pointer that is new, or whose
    entry a doctor has taken (a taken patient may join again without leaving first)."""
    tx.put_new("entry", urgent_entry_item(entry))
    tx.put("pointer", urgent_pointer_item(entry["patient_id"], entry["specialty"], entry["entry_id"]),
           condition="attribute_not_exists(PK) OR #s = :taken", names={"#s": "status"},
           expr_values=db.values(taken="taken"))


def urgent_entry(specialty: str, eid: str) -> Optional[dict[str, Any]]:
    return db.get(db.key("URGENT", specialty), eid)


def urgent_pointer(pid: str) -> Optional[dict[str, Any]]:
    return db.get(*urgent_pointer_key(pid))


def queue_ahead(specialty: str, entry_sk: str) -> int:
    return db.query_count("GSI2PK = :pk AND GSI2SK < :me",
                          db.values(pk=db.key("QUEUE", specialty), me=entry_sk), index="GSI2")


def queue_page(specialty: str, cursor: Optional[str], limit: int = 10) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(db.key("QUEUE", specialty), "", limit, cursor, index="GSI2")


def leave_queue_tx(tx: db.Tx, pid: str, entry: dict[str, Any]) -> None:
    tx.delete("pointer", *urgent_pointer_key(pid))
    if entry["status"] == "waiting":
        tx.update("entry", entry["PK"], entry["SK"], "SET #s = :left REMOVE GSI2PK, GSI2SK",
                  condition="#s = :waiting", names={"#s": "status"},
                  expr_values=db.values(left="left", waiting="waiting"))


def take_entry_tx(tx: db.Tx, entry: dict[str, Any], doctor_id: str, booking_id: str, now_iso: str) -> None:
    tx.update("entry", entry["PK"], entry["SK"],
              "SET #s = :taken, doctor_id = :d, booking_id = :b, taken_at = :now REMOVE GSI2PK, GSI2SK",
              condition="#s = :w", names={"#s": "status"},
              expr_values=db.values(taken="taken", d=doctor_id, b=booking_id, now=now_iso, w="waiting"))
    tx.update("pointer", *urgent_pointer_key(entry["patient_id"]), "SET #s = :taken",
              condition="attribute_exists(PK) AND entry_id = :e", names={"#s": "status"},
              expr_values=db.values(taken="taken", e=entry["entry_id"]))


def now_iso() -> str:
    return clock.iso(clock.now())
