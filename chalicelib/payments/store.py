"""Payments in the single table: every key the feature builds is built here.

| item | PK | SK | index keys (sparse) |
|---|---|---|---|
| payment | PAYMENT#<payment id> | PAYMENT | once paid: GSI1 PAYER#<patient>, GSI4 TXNS#<clinic> / <paid at>#<id> |
| refund | PAYMENT#<payment id> | REFUND#<refund id> | GSI1 PAYER#<patient>, GSI4 TXNS#<clinic> / <at>#<id> |
| a refund made in the provider's dashboard | PAYMENT#<payment id> | REFUND#X<hash of its id there> | as a refund |
| a booking's current payment | BOOKING#<booking id> | PAYMENT | |
| the patient's provider customer | PAYCUSTOMER#<patient> | STRIPE | |
| a provider event applied | PAYEVENT#<event id> | EVENT | TTL 30 days |

A payment id is ``<booking id>-<attempt>``: the same attempt gives the same id and the same idempotency
key at the provider, so a retry after a timeout finds the intent it made. A booking's payments are therefore
``<booking id>-1`` .. ``<booking id>-<seq>`` (``seq`` on the booking's pointer): ``booking_payments`` reads them
all by key (one BatchGetItem per 100 attempts), with no index to keep.
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import db

EVENT_KEEP_S = 30 * 86400


def payment_pk(payment_id: str) -> str:
    return db.key("PAYMENT", payment_id)


def payref_key(booking_id: str) -> tuple[str, str]:
    return db.key("BOOKING", booking_id), "PAYMENT"


def customer_key(patient_id: str) -> tuple[str, str]:
    return db.key("PAYCUSTOMER", patient_id), "STRIPE"


def event_key(event_id: str) -> tuple[str, str]:
    return db.key("PAYEVENT", event_id.replace("#", "")), "EVENT"


def payer_pk(patient_id: str) -> str:
    return db.key("PAYER", patient_id)


def txns_pk(clinic_id: str) -> str:
    return db.key("TXNS", clinic_id)


def get_payment(payment_id: str) -> Optional[dict[str, Any]]:
    return db.get(payment_pk(payment_id), "PAYMENT")


def get_refunds(payment_id: str) -> list[dict[str, Any]]:
    return db.query_prefix(payment_pk(payment_id), "REFUND#", cap=1000, consistent=True)


def get_refund(payment_id: str, refund_id: str) -> Optional[dict[str, Any]]:
    return db.get(payment_pk(payment_id), db.key("REFUND", refund_id))


def payment_and_refunds(payment_id: str) -> tuple[Optional[dict[str, Any]], list[dict[str, Any]]]:
    """The payment and every refund of it: one consistent query over its partition (paged to the end)."""
    items = db.query_prefix(payment_pk(payment_id), "", cap=1001, consistent=True)
    p = next((i for i in items if i.get("SK") == "PAYMENT"), None)
    return p, [i for i in items if str(i.get("SK", "")).startswith("REFUND#")]


def booking_payments(booking_id: str, seq: int) -> list[dict[str, Any]]:
    """Every payment ever made for a booking (attempts 1..seq), in attempt order."""
    if seq < 1:
        return []
    found = db.batch_get([(payment_pk(f"{booking_id}-{n}"), "PAYMENT") for n in range(1, seq + 1)])
    return sorted(found, key=lambda p: int(str(p["payment_id"]).rsplit("-", 1)[1]))


def payment_item(p: dict[str, Any]) -> dict[str, Any]:
    return {"PK": payment_pk(p["payment_id"]), "SK": "PAYMENT", "type": "payment", **p}


def index_keys(p: dict[str, Any], at: str) -> dict[str, Any]:
    return {"GSI1PK": payer_pk(p["patient_id"]), "GSI1SK": f"{at}#{p['payment_id']}",
            "GSI4PK": txns_pk(p["clinic_id"]), "GSI4SK": f"{at}#{p['payment_id']}"}


def refund_item(p: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    return {"PK": payment_pk(p["payment_id"]), "SK": db.key("REFUND", r["refund_id"]), "type": "refund", **r,
            "GSI1PK": payer_pk(p["patient_id"]), "GSI1SK": f"{r['created_at']}#{r['refund_id']}",
            "GSI4PK": txns_pk(p["clinic_id"]), "GSI4SK": f"{r['created_at']}#{r['refund_id']}"}


def update_payment(tx: db.Tx, p: dict[str, Any], changes: dict[str, Any], allowed: tuple[str, ...],
                   name: str = "payment", remove: tuple[str, ...] = ()) -> db.Tx:
    """Change a payment if it is still in one of ``allowed`` and at the version read (``version`` + 1)."""
    names = {"#st": "status", "#v": "version"}
    sets = ["#v = :next"]
    vals: dict[str, Any] = {"seen": p["version"], "next": p["version"] + 1}
    for i, (k, v) in enumerate(changes.items()):
        names[f"#c{i}"] = k
        sets.append(f"#c{i} = :c{i}")
        vals[f"c{i}"] = v
    for i, s in enumerate(allowed):
        vals[f"a{i}"] = s
    expr = "SET " + ", ".join(sets)
    if remove:
        names.update({f"#r{j}": r for j, r in enumerate(remove)})
        expr += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
    cond = f"#v = :seen AND #st IN ({', '.join(f':a{i}' for i in range(len(allowed)))})"
    return tx.update(name, payment_pk(p["payment_id"]), "PAYMENT", expr, condition=cond,
                     expr_values=db.values(**vals), names=names)


def mark_event(tx: db.Tx, event_id: str, kind: str, now: int) -> db.Tx:
    pk, sk = event_key(event_id)
    return tx.put_new("provider_event", {"PK": pk, "SK": sk, "type": "payment_event", "kind": kind,
                                         "expires_at": now + EVENT_KEEP_S})


def put_payref(tx: db.Tx, booking_id: str, ref: dict[str, Any], seen_seq: int) -> db.Tx:
    """A booking's current payment: one at a time, moved on only from the attempt read."""
    pk, sk = payref_key(booking_id)
    item = {"PK": pk, "SK": sk, "type": "payment_ref", **ref}
    if seen_seq == 0:
        return tx.put_new("payref", item)
    return tx.put("payref", item, condition="seq = :seen", expr_values=db.values(seen=seen_seq))


def history_page(patient_id: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.page("GSI1PK = :pk", db.values(pk=payer_pk(patient_id)), limit, cursor, index="GSI1", forward=False)


def transactions_page(clinic_id: str, lo: str, hi: str, limit: int, cursor: Optional[str],
                      filter_expression: Optional[str], filter_values: dict[str, Any],
                      names: Optional[dict[str, str]]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.page("GSI4PK = :pk AND GSI4SK BETWEEN :lo AND :hi",
                   db.values(pk=txns_pk(clinic_id), lo=lo, hi=hi + "~", **filter_values), limit, cursor,
                   index="GSI4", names=names, filter_expression=filter_expression, forward=False)


def transactions_all(clinic_id: str, lo: str, hi: str, filter_expression: Optional[str],
                     filter_values: dict[str, Any], names: Optional[dict[str, str]], cap: int) -> list[dict[str, Any]]:
    return db.query_all("GSI4PK = :pk AND GSI4SK BETWEEN :lo AND :hi",
                        db.values(pk=txns_pk(clinic_id), lo=lo, hi=hi + "~", **filter_values), index="GSI4",
                        names=names, filter_expression=filter_expression, cap=cap)
