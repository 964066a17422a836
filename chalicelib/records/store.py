"""Items of the medical card and back; every key and expression of the records feature.

    CARD#<patient>      ENTRY#<section>#<entry>      the current version of an entry (sealed payload)
    CARD#<patient>      GRANT#<grant>                a sharing grant (GSI1: GRANTEE#<kind>#<id> / <patient>#<grant>
                                                     while active; revoking removes it from the index)
    CARD#<patient>      META                         entries per section (the cap is held by a condition)
    CARDHIST#<patient>  <section>#<entry>#<version>  earlier versions of an entry (sealed)
    CARDLOG#<patient>   <at>#<event>                 the access log (who read or wrote card data)
    MYPATIENTS#<doctor> PATIENT#<patient>            a doctor's row of "my patients" (GSI1: MYPATIENTS#<doctor> /
                                                     <listed until>#<patient> while a live grant or an
                                                     observation keeps the patient on the list)

The card's partition holds the current entries and the grants and nothing else, so the whole card
and everything that decides who may see it come back in one query.
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import db

CARD_READ_CAP = 5 * 500 + 1000  # every section full and a thousand grants: refuse loudly past it


def card_pk(pid: str) -> str:
    return db.key("CARD", pid)


def entry_sk(section: str, eid: str) -> str:
    return db.key("ENTRY", section, eid)


def hist_pk(pid: str) -> str:
    return db.key("CARDHIST", pid)


def log_pk(pid: str) -> str:
    return db.key("CARDLOG", pid)


def grantee_pk(kind: str, grantee_id: str) -> str:
    return db.key("GRANTEE", kind, grantee_id)


# ------------------------------------------------------------------ the card

Items = list[dict[str, Any]]


def read_card_all(pid: str) -> dict[str, Items]:
    """Every item of the card's partition by kind: entry, grant, conclusion, document (one query while it fits
    a page)."""
    items = db.query_all("PK = :pk", db.values(pk=card_pk(pid)), cap=CARD_READ_CAP, consistent=True)
    out: dict[str, Items] = {"entry": [], "grant": [], "conclusion": [], "document": []}
    for i in items:
        kind = str(i.get("type", "")).removeprefix("card_")
        if kind in out:
            out[kind].append(i)
    return out


def read_card(pid: str) -> tuple[Items, Items, Items]:
    """Every current entry, every grant and every conclusion version of the card."""
    parts = read_card_all(pid)
    return parts["entry"], parts["grant"], parts["conclusion"]


# ------------------------------------------------------------------ documents

def document_item(d: dict[str, Any]) -> dict[str, Any]:
    return {"PK": card_pk(d["patient_id"]), "SK": db.key("DOC", d["document_id"]), "type": "card_document", **d}


def get_document(pid: str, did: str) -> Optional[dict[str, Any]]:
    return db.get(card_pk(pid), db.key("DOC", did))


def mark_available(pid: str, did: str) -> bool:
    try:
        db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(card_pk(pid), db.key("DOC", did)),
                             UpdateExpression="SET #s = :ok", ConditionExpression="#s = :pending",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues=db.values(ok="available", pending="pending"))
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise


def get_entry(pid: str, section: str, eid: str) -> Optional[dict[str, Any]]:
    return db.get(card_pk(pid), entry_sk(section, eid))


def entry_item(e: dict[str, Any]) -> dict[str, Any]:
    return {"PK": card_pk(e["patient_id"]), "SK": entry_sk(e["section"], e["entry_id"]), "type": "card_entry", **e}


def history_item(e: dict[str, Any]) -> dict[str, Any]:
    sk = f"{e['section']}#{e['entry_id']}#{int(e['version']):05d}"
    body = {k: v for k, v in e.items() if k not in ("PK", "SK", "type")}
    return {"PK": hist_pk(e["patient_id"]), "SK": sk, "type": "card_entry_version", **body}


def add_entry_tx(tx: db.Tx, e: dict[str, Any], cap: int) -> None:
    """A new entry, counted against its section's cap in the same transaction."""
    tx.put_new("entry", entry_item(e))
    tx.update("count", card_pk(e["patient_id"]), "META", "ADD #n :one SET #t = :meta",
              condition="attribute_not_exists(#n) OR #n < :cap", names={"#n": f"n_{e['section']}", "#t": "type"},
              expr_values=db.values(one=1, cap=cap, meta="card_meta"))


def edit_entry_tx(tx: db.Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
    """The earlier version kept under history; the current one replaced only if nobody edited it meanwhile."""
    tx.put_new("history", history_item(old))
    tx.put("entry", entry_item(new), condition="#v = :v", names={"#v": "version"},
           expr_values=db.values(v=int(old["version"])))


def delete_entry_tx(tx: db.Tx, old: dict[str, Any], tombstone: dict[str, Any]) -> None:
    """A patient's deletion: the last version and a tombstone version (no payload) kept under history, the
    entry itself removed from the card's partition (so the whole card stays one bounded query) and the
    section's count freed, all only if nobody edited it meanwhile."""
    tx.put_new("history", history_item(old))
    tx.put_new("tombstone", history_item(tombstone))
    tx.delete("entry", card_pk(old["patient_id"]), entry_sk(old["section"], old["entry_id"]),
              condition="#v = :v", names={"#v": "version"}, expr_values=db.values(v=int(old["version"])))
    tx.update("count", card_pk(old["patient_id"]), "META", "ADD #n :minus",
              condition="#n > :zero", names={"#n": f"n_{old['section']}"}, expr_values=db.values(minus=-1, zero=0))


def entry_versions(pid: str, section: str, eid: str) -> list[dict[str, Any]]:
    return db.query_prefix(hist_pk(pid), f"{section}#{eid}#", cap=1000)


# ------------------------------------------------------------------ visit conclusions

def conclusion_sk(bid: str, version: int) -> str:
    return f"CONCL#{bid}#{version:03d}"


def conclusion_item(c: dict[str, Any]) -> dict[str, Any]:
    return {"PK": card_pk(c["patient_id"]), "SK": conclusion_sk(c["booking_id"], int(c["version"])),
            "type": "card_conclusion", **c}


def conclusions_of_visit(pid: str, bid: str) -> list[dict[str, Any]]:
    """Every version of a visit's conclusion, oldest first."""
    return db.query_prefix(card_pk(pid), f"CONCL#{bid}#", cap=999, consistent=True)


def save_draft_tx(tx: db.Tx, c: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
    """Version 1 as a draft: new, or replacing the draft at the revision it was read at (never a signed one).
    The revision counter, not ``written_at`` (one-second resolution), tells one write from the next."""
    if old is None:
        tx.put("conclusion", conclusion_item(c), condition="attribute_not_exists(PK)")
        return
    tx.put("conclusion", conclusion_item(c), condition="#s = :draft AND #r = :r",
           names={"#s": "status", "#r": "rev"}, expr_values=db.values(draft="draft", r=revision(old)))


def revision(c: dict[str, Any]) -> int:
    """A conclusion's write counter: every save, signature and amendment of a visit's conclusion adds one."""
    return int(c.get("rev") or 1)


def sign_tx(tx: db.Tx, old: dict[str, Any], signed: dict[str, Any]) -> None:
    """The draft, signed exactly as it was read: still a draft at the same revision."""
    tx.put("conclusion", conclusion_item(signed), condition="#s = :draft AND #r = :r",
           names={"#s": "status", "#r": "rev"}, expr_values=db.values(draft="draft", r=revision(old)))


def amend_tx(tx: db.Tx, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A new signed version on top of the latest signed one: the old one is checked, never changed."""
    tx.check("previous", card_pk(old["patient_id"]), conclusion_sk(old["booking_id"], int(old["version"])),
             "#s = :signed", names={"#s": "status"}, expr_values=db.values(signed="signed"))
    tx.put_new("conclusion", conclusion_item(new))


# ------------------------------------------------------------------ grants

def grant_item(g: dict[str, Any]) -> dict[str, Any]:
    return {"PK": card_pk(g["patient_id"]), "SK": db.key("GRANT", g["grant_id"]), "type": "card_grant", **g,
            "GSI1PK": grantee_pk(g["grantee_kind"], g["grantee_id"]), "GSI1SK": f"{g['patient_id']}#{g['grant_id']}"}


def get_grant(pid: str, gid: str) -> Optional[dict[str, Any]]:
    return db.get(card_pk(pid), db.key("GRANT", gid))


def revoke_tx(tx: db.Tx, pid: str, gid: str, now_iso: str) -> None:
    tx.update("grant", card_pk(pid), db.key("GRANT", gid), "SET #s = :revoked, revoked_at = :now REMOVE GSI1PK, GSI1SK",
              condition="#s = :active", names={"#s": "status"},
              expr_values=db.values(revoked="revoked", active="active", now=now_iso))


def grants_page(pid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(card_pk(pid), "GRANT#", limit, cursor, forward=False)


def grants_to(kind: str, grantee_id: str, now_iso: str) -> list[dict[str, Any]]:
    """Every active grant to a grantee whose end is not past (the index holds active grants only; paged to the
    end): a clinic's grants when a doctor joins or leaves it."""
    return db.query_all("GSI1PK = :pk", db.values(pk=grantee_pk(kind, grantee_id), now=now_iso), index="GSI1",
                        filter_expression="#u > :now", names={"#u": "until"})


# ------------------------------------------------------------------ "my patients": one row per doctor and patient

def care_pk(did: str) -> str:
    return db.key("MYPATIENTS", did)


def care_sk(pid: str) -> str:
    return db.key("PATIENT", pid)


def care_row_item(row: dict[str, Any]) -> dict[str, Any]:
    """A doctor's row of one patient. ``listed_until`` (the latest end of a live grant or of an observation, an
    instant) puts it in GSI1 under the doctor, sorted by it; a row with nothing live leaves the index."""
    item = {"PK": care_pk(row["doctor_id"]), "SK": care_sk(row["patient_id"]), "type": "card_care", **row}
    if row.get("listed_until"):
        item.update(GSI1PK=care_pk(row["doctor_id"]), GSI1SK=f"{row['listed_until']}#{row['patient_id']}")
    return item


def get_care_row(did: str, pid: str) -> Optional[dict[str, Any]]:
    return db.get(care_pk(did), care_sk(pid))


def put_care_row(row: dict[str, Any], seen_version: Optional[int]) -> bool:
    """Write a recomputed row only over the version it was computed against (False: someone wrote meanwhile)."""
    if seen_version is None:
        cond, vals = "attribute_not_exists(PK)", None
    else:
        cond, vals = "#v = :v", db.values(v=seen_version)
    args: dict[str, Any] = {"TableName": db.table_name(), "Item": db.to_item(care_row_item(row)),
                            "ConditionExpression": cond}
    if vals:
        args.update(ExpressionAttributeNames={"#v": "version"}, ExpressionAttributeValues=vals)
    try:
        db.ddb().put_item(**args)
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise


def care_page(did: str, now_iso: str, limit: int,
              cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    """One page of the doctor's listed rows whose reason lasts past now: the key range, not a filter, leaves out
    the ended ones, so a page is one query however many rows ended."""
    return db.page("GSI1PK = :pk AND GSI1SK > :now", db.values(pk=care_pk(did), now=now_iso), limit, cursor,
                   index="GSI1")


# ------------------------------------------------------------------ the access log

def access_item(a: dict[str, Any]) -> dict[str, Any]:
    return {"PK": log_pk(a["patient_id"]), "SK": f"{a['at']}#{a['access_id']}", "type": "card_access", **a}


def put_access(a: dict[str, Any]) -> None:
    db.put_new(access_item(a))


def access_page(pid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(log_pk(pid), "", limit, cursor, forward=False)


EXPORT_LOG_CAP = 20_000  # an export reads the whole access log; past this it refuses loudly


def access_all(pid: str) -> list[dict[str, Any]]:
    return db.query_prefix(log_pk(pid), "", cap=EXPORT_LOG_CAP)
