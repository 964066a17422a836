"""DynamoDB items of analytics. All key building for the feature lives here.

| item                         | PK                     | SK               | holds                                    |
|------------------------------|------------------------|------------------|------------------------------------------|
| a clinic's local day         | ANALYTICS#<cid>        | DAY#<YYYY-MM-DD> | flat numeric counters (names below)      |
| a clinic's all-time totals   | ANALYTICS#<cid>        | TOTAL            | payments seen, cashback outstanding      |
| a patient in a clinic        | ANAPATIENT#<cid>       | P#<pid>          | strikes, visits, spend, last visit/service|
| one source's contribution    | ANASRC#<source id>     | C                | what it added to which items (``parts``) |

Counters are top-level numeric attributes, so ``ADD`` needs no parent map to exist:
``c|<metric>[|<dim>]`` for the clinic, ``d|<doctor id>|<metric>[|<dim>]`` per doctor, ``b|<branch id>|...`` per
branch and ``r|<resource id>|...`` per room or machine. A day item of a clinic with 20 active doctors holds
about 30 KB (a doctor adds at most ~40 attributes of ~40 bytes), far from DynamoDB's 400 KB.

A contribution records, per source (a booking, a conclusion, a feedback answer, a payment, a refund, a
cashback event), exactly what it added; applying a source again computes its new contribution, writes only
the difference and the new contribution in one transaction conditioned on the version read. So an event
applied twice counts once, events may arrive in any order, and a rebuild that recomputes the same
contributions from the source items agrees with the live counters by construction.
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import db

SEP = "|"
KEEP_SOURCE_DAYS = 800  # contributions outlive any correction a source can still get


def day_pk(cid: str) -> str:
    return db.key("ANALYTICS", cid)


def day_sk(day: str) -> str:
    return db.key("DAY", day)


def total_sk() -> str:
    return "TOTAL"


def patient_pk(cid: str) -> str:
    return db.key("ANAPATIENT", cid)


def patient_sk(pid: str) -> str:
    return db.key("P", pid)


def source_pk(source_id: str) -> str:
    return f"ANASRC#{source_id}"


def target(pk: str, sk: str) -> str:
    return f"{pk}{SEP}{sk}"


def split_target(t: str) -> tuple[str, str]:
    pk, sk = t.split(SEP, 1)
    return pk, sk


# ------------------------------------------------------------------ contributions

def get_source(source_id: str) -> Optional[dict[str, Any]]:
    return db.get(source_pk(source_id), "C")


def diff(old: dict[str, dict[str, int]], new: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per target item, the counter deltas that turn ``old`` into ``new`` (zeros left out)."""
    out: dict[str, dict[str, int]] = {}
    for t in set(old) | set(new):
        a, b = old.get(t, {}), new.get(t, {})
        delta = {k: int(b.get(k, 0)) - int(a.get(k, 0)) for k in set(a) | set(b)}
        delta = {k: v for k, v in delta.items() if v}
        if delta:
            out[t] = delta
    return out


def _item_type(sk: str) -> str:
    return "analytics_day" if sk.startswith("DAY#") else "analytics_total" if sk == "TOTAL" else "analytics_patient"


def apply_ops(source_id: str, seen: Optional[dict[str, Any]], parts: dict[str, dict[str, int]],
              deltas: dict[str, dict[str, int]], now: int) -> db.Tx:
    """The transaction: each target's ``ADD`` of its deltas and the new contribution, conditioned on the
    contribution being the one read (``version``) or absent."""
    tx = db.Tx()
    for i, (t, delta) in enumerate(sorted(deltas.items())):
        pk, sk = split_target(t)
        names = {"#t": "type", **{f"#a{j}": k for j, k in enumerate(sorted(delta))}}
        vals = {"t": _item_type(sk), **{f"v{j}": delta[k] for j, k in enumerate(sorted(delta))}}
        adds = ", ".join(f"#a{j} :v{j}" for j in range(len(delta)))
        tx.update(f"counter:{i}", pk, sk, f"SET #t = :t ADD {adds}", names=names, expr_values=db.values(**vals))
    item = {"PK": source_pk(source_id), "SK": "C", "type": "analytics_source", "parts": parts,
            "version": int((seen or {}).get("version", 0)) + 1, "expires_at": now + KEEP_SOURCE_DAYS * 86400}
    if seen is None:
        tx.put_new("source", item)
    else:
        tx.put("source", item, condition="version = :v", expr_values=db.values(v=int(seen["version"])))
    return tx


def set_last_visit(cid: str, pid: str, service_id: str, day: str) -> None:
    """The patient's last completed visit of a service (a maximum: applying it twice changes nothing)."""
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(patient_pk(cid), patient_sk(pid)),
            UpdateExpression="SET #t = :t, patient_id = :p, #l = :d",
            ConditionExpression="attribute_not_exists(#l) OR #l < :d",
            ExpressionAttributeNames={"#t": "type", "#l": f"last{SEP}{service_id}"},
            ExpressionAttributeValues=db.values(t="analytics_patient", p=pid, d=day))
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise


def set_scheduled(cid: str, day: str, minutes: dict[str, int]) -> None:
    """A day's scheduled minutes (``d|<did>|smin``, ``b|<branch>|smin``, ``r|<rid>|smin``), set, not added:
    the snapshot of the schedule as it stood (a later template change leaves past days alone)."""
    if not minutes:
        return
    names = {"#t": "type", **{f"#a{j}": k for j, k in enumerate(sorted(minutes))}}
    vals = {"t": "analytics_day", **{f"v{j}": minutes[k] for j, k in enumerate(sorted(minutes))}}
    sets = ", ".join(f"#a{j} = :v{j}" for j in range(len(minutes)))
    db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(day_pk(cid), day_sk(day)),
                         UpdateExpression=f"SET #t = :t, {sets}", ExpressionAttributeNames=names,
                         ExpressionAttributeValues=db.values(**vals))


# ------------------------------------------------------------------ reads

def days(cid: str, first: str, last: str) -> list[dict[str, Any]]:
    """Every day item of a clinic in [first, last]: one query (a year is at most 366 items)."""
    return db.query_all("PK = :pk AND SK BETWEEN :a AND :b",
                        db.values(pk=day_pk(cid), a=day_sk(first), b=day_sk(last)), cap=400)


def total(cid: str) -> dict[str, Any]:
    return db.get(day_pk(cid), total_sk(), consistent=False) or {}


def patients(cid: str, cap: int = 50_000) -> list[dict[str, Any]]:
    """Every patient summary of a clinic (segments read them all and choose; refused past ``cap``)."""
    return db.query_prefix(patient_pk(cid), "P#", cap=cap)


def wipe_days(cid: str, first: str, last: str) -> int:
    """Delete a clinic's day items in [first, last] (the rebuild writes them again)."""
    found = days(cid, first, last)
    for at in range(0, len(found), 25):
        db.ddb().batch_write_item(RequestItems={db.table_name(): [
            {"DeleteRequest": {"Key": db.item_key(i["PK"], i["SK"])}} for i in found[at:at + 25]]})
    return len(found)


def put_day(cid: str, day: str, counters: dict[str, int]) -> None:
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
        "PK": day_pk(cid), "SK": day_sk(day), "type": "analytics_day", **counters}))


def put_source(source_id: str, parts: dict[str, dict[str, int]], now: int) -> None:
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
        "PK": source_pk(source_id), "SK": "C", "type": "analytics_source", "parts": parts, "version": 1,
        "expires_at": now + KEEP_SOURCE_DAYS * 86400}))


def add_counters(pk: str, sk: str, delta: dict[str, int]) -> None:
    names = {"#t": "type", **{f"#a{j}": k for j, k in enumerate(sorted(delta))}}
    vals = {"t": _item_type(sk), **{f"v{j}": delta[k] for j, k in enumerate(sorted(delta))}}
    adds = ", ".join(f"#a{j} :v{j}" for j in range(len(delta)))
    db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(pk, sk), UpdateExpression=f"SET #t = :t ADD {adds}",
                         ExpressionAttributeNames=names, ExpressionAttributeValues=db.values(**vals))


def known_patients(cid: str, pids: list[str]) -> set[str]:
    """Which of these patients have a summary in the clinic (they had a visit there): one BatchGetItem."""
    return {i["SK"][2:] for i in db.batch_get([(patient_pk(cid), patient_sk(p)) for p in pids])}
