"""DynamoDB items of the notify feature. All its key building lives here.

| item          | PK                  | SK              | notes                                               |
|---------------|---------------------|-----------------|-----------------------------------------------------|
| device        | USER#<uid>          | DEVICE#<did>    | did = sha256(token)[:32]; expires_at = refreshed + 270 d |
| token owner   | FCMTOKEN#<did>      | TOKEN           | which user holds a token (one at a time)             |
| inbox message | USER#<uid>          | INBOX#<mid>     | mid is a ULID: newest first by SK                    |
| inbox state   | USER#<uid>          | INBOXSTATE      | unread count, read_before (mark-all watermark)       |
| send record   | NOTIFYMSG#<key>     | MSG             | one per message key (idempotency); GSI2 while held  |
| preferences   | USER#<uid>          | NOTIFYPREFS     | channels per category, quiet hours and their zone     |

A send record held by quiet hours sits in GSI2 at ``NOTIFYHELD#<release hour>`` / ``<until>#<key>`` until
the held-messages job sends it.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from chalicelib.core import clock, db

STATE_SK = "INBOXSTATE"
KEEP_INBOX_DAYS = 365
KEEP_SEND_RECORD_DAYS = 30


def user_pk(uid: str) -> str:
    return db.key("USER", uid)


def device_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def message_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


# ------------------------------------------------------------------ devices

def token_owner(did: str) -> Optional[dict[str, Any]]:
    return db.get(db.key("FCMTOKEN", did), "TOKEN")


def devices(uid: str) -> list[dict[str, Any]]:
    """Every device a user registered (a handful; capped so a runaway client cannot grow a send)."""
    return db.query_prefix(user_pk(uid), "DEVICE#", cap=100, consistent=True)


def tx_put_device(tx: db.Tx, device: dict[str, Any], previous_owner: Optional[str]) -> None:
    did, uid = device["device_id"], device["user_id"]
    owner = {"PK": db.key("FCMTOKEN", did), "SK": "TOKEN", "type": "fcm_token", "user_id": uid,
             "expires_at": device["expires_at"]}
    if previous_owner is None:
        tx.put("owner", owner, condition="attribute_not_exists(PK) OR user_id = :uid",
               expr_values=db.values(uid=uid))
    else:
        tx.put("owner", owner, condition="user_id = :prev", expr_values=db.values(prev=previous_owner))
        if previous_owner != uid:  # the token moved to another account on the same phone
            tx.delete("old_device", user_pk(previous_owner), db.key("DEVICE", did))
    tx.put("device", {"PK": user_pk(uid), "SK": db.key("DEVICE", did), "type": "device", **device})


def delete_devices(uid: str, dids: list[str]) -> None:
    for did in dict.fromkeys(dids):
        tx = db.Tx()
        tx.delete("device", user_pk(uid), db.key("DEVICE", did))
        tx.delete("owner", db.key("FCMTOKEN", did), "TOKEN", condition="attribute_not_exists(PK) OR user_id = :uid",
                  expr_values=db.values(uid=uid))
        try:
            tx.commit()
        except db.TxCancelled:  # the token moved to another account meanwhile: only our device goes
            db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(user_pk(uid), db.key("DEVICE", did)))


# ------------------------------------------------------------------ send records and the inbox

def send_record(key: str) -> Optional[dict[str, Any]]:
    return db.get(db.key("NOTIFYMSG", message_key(key)), "MSG")


def create_message(key: str, record: dict[str, Any], inbox: dict[str, Any], now_epoch: int) -> bool:
    """The send record, the inbox message and the unread count in one transaction. False when the
    record exists already (a consumer or job running twice)."""
    uid, mid = record["user_id"], record["message_id"]
    tx = db.Tx()
    tx.put_new("record", {"PK": db.key("NOTIFYMSG", message_key(key)), "SK": "MSG", "type": "notify_send",
                          "expires_at": now_epoch + KEEP_SEND_RECORD_DAYS * 86400, **record})
    tx.put("inbox", {"PK": user_pk(uid), "SK": db.key("INBOX", mid), "type": "inbox_message", "read": False,
                     "expires_at": now_epoch + KEEP_INBOX_DAYS * 86400, **inbox, "message_id": mid})
    # A mark-all that passed this message's id meanwhile (ids are made before the commit) would count it
    # read by its watermark and unread by the count: the caller makes a new id and tries again.
    tx.update("state", user_pk(uid), STATE_SK, "SET #t = :t ADD unread :one, changes :one",
              condition="attribute_not_exists(#rb) OR #rb < :mid", names={"#t": "type", "#rb": "read_before"},
              expr_values=db.values(t="inbox_state", one=1, mid=mid))
    try:
        tx.commit()
    except db.TxCancelled as exc:
        if send_record(key) is not None:  # another run created it (its condition failed, or we clashed)
            return False
        if "state" in exc.failed:
            raise PassedByMarkAll() from None
        raise
    return True


class PassedByMarkAll(Exception):
    """The inbox was marked read past this message's id while it was being written."""


def claim(key: str, now: str, until: str) -> Optional[dict[str, Any]]:
    """Take the delivery of a pending message for a while (one sender at a time: two runs of a job or two
    consumers at once push it once). None when it is delivered or another sender holds it."""
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(db.key("NOTIFYMSG", message_key(key)), "MSG"),
            UpdateExpression="SET lease_until = :until",
            ConditionExpression="#st = :pending AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues=db.values(until=until, now=now, pending="pending"), ReturnValues="ALL_NEW")
    except Exception as exc:
        if db.is_condition_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def release(key: str) -> None:
    """Give a claimed delivery back (it failed; the next try may take it at once)."""
    db.ddb().update_item(
        TableName=db.table_name(), Key=db.item_key(db.key("NOTIFYMSG", message_key(key)), "MSG"),
        UpdateExpression="REMOVE lease_until")


def mark_delivered(key: str, channel: str, at: str) -> None:
    db.ddb().update_item(
        TableName=db.table_name(), Key=db.item_key(db.key("NOTIFYMSG", message_key(key)), "MSG"),
        UpdateExpression="SET #st = :d, channel = :c, delivered_at = :at REMOVE lease_until, GSI2PK, GSI2SK",
        ExpressionAttributeNames={"#st": "status"},
        ExpressionAttributeValues=db.values(d="delivered", c=channel, at=at))


def inbox_state(uid: str) -> dict[str, Any]:
    return db.get(user_pk(uid), STATE_SK) or {"unread": 0, "read_before": ""}


def inbox_page(uid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    return db.query_page(user_pk(uid), "INBOX#", limit, cursor, forward=False)


def latest_message_id(uid: str) -> Optional[str]:
    resp = db.ddb().query(TableName=db.table_name(), KeyConditionExpression="PK = :pk AND begins_with(SK, :pre)",
                          ExpressionAttributeValues=db.values(pk=user_pk(uid), pre="INBOX#"),
                          ScanIndexForward=False, Limit=1, ConsistentRead=True)
    items = resp.get("Items") or []
    return db.from_item(items[0])["message_id"] if items else None  # type: ignore[index]


def mark_read(uid: str, mid: str, state: dict[str, Any]) -> bool:
    """Mark one message read and count it off, unless it was read already. The state's watermark and
    count must be what was read (a concurrent mark-all or a new message makes the caller read again)."""
    tx = db.Tx()
    tx.update("message", user_pk(uid), db.key("INBOX", mid), "SET #r = :t",
              condition="attribute_exists(PK) AND #r = :f", names={"#r": "read"},
              expr_values=db.values(t=True, f=False))
    # the message is counted off unless a mark-all covered it meanwhile (the watermark moved): each message
    # is counted off once (its own condition), so other reads and new messages need not be waited for
    seen_rb = state.get("read_before") or ""
    cond = "#rb = :seen_rb" if seen_rb else "attribute_not_exists(#rb)"
    vals = db.values(seen_rb=seen_rb) if seen_rb else {}
    tx.update("state", user_pk(uid), STATE_SK, "ADD unread :minus, changes :plus",
              condition=cond + " AND unread > :zero", names={"#rb": "read_before"},
              expr_values={**vals, **db.values(minus=-1, plus=1, zero=0)})
    tx.commit()
    return True


def mark_all_read(uid: str, watermark: str, state: dict[str, Any]) -> None:
    cond, vals = _state_condition(state, allow_missing=True)
    db.ddb().update_item(
        TableName=db.table_name(), Key=db.item_key(user_pk(uid), STATE_SK),
        UpdateExpression="SET #rb = :rb, unread = :zero, #t = :t ADD changes :plus", ConditionExpression=cond,
        ExpressionAttributeNames={"#rb": "read_before", "#t": "type"},
        ExpressionAttributeValues={**vals, **db.values(rb=watermark, zero=0, t="inbox_state", plus=1)})


def _state_condition(state: dict[str, Any], allow_missing: bool = False) -> tuple[str, dict[str, Any]]:
    """The state is as it was read: every change to it (a message, a read, a mark-all) counts up
    ``changes``, so an unread count that went up and down again meanwhile is not mistaken for the one
    that was read (comparing the count itself let a mark-all zero a message that had just arrived)."""
    seen = int(state.get("changes") or 0)
    if seen:
        return "changes = :seen_changes", db.values(seen_changes=seen)
    cond = "attribute_not_exists(changes)"
    if allow_missing:
        cond = f"(attribute_not_exists(PK) OR {cond})"
    return cond, {}


# ------------------------------------------------------------------ preferences and held messages

PREFS_SK = "NOTIFYPREFS"


def preferences(uid: str) -> Optional[dict[str, Any]]:
    return db.get(user_pk(uid), PREFS_SK)


def put_preferences(uid: str, prefs: dict[str, Any]) -> None:
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(
        {"PK": user_pk(uid), "SK": PREFS_SK, "type": "notify_prefs", **prefs}))


def held_bucket(at_iso: str) -> str:
    return db.key("NOTIFYHELD", at_iso[:13])


def hold(key: str, until_iso: str) -> None:
    """Keep a pending message until ``until`` (quiet hours): the send record enters the held index."""
    db.ddb().update_item(
        TableName=db.table_name(), Key=db.item_key(db.key("NOTIFYMSG", message_key(key)), "MSG"),
        UpdateExpression="SET hold_until = :u, GSI2PK = :pk, GSI2SK = :sk REMOVE lease_until",
        ExpressionAttributeValues=db.values(u=until_iso, pk=held_bucket(until_iso),
                                            sk=f"{until_iso}#{message_key(key)}"))


def held_due(bucket_keys: list[str], now_iso: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pk in bucket_keys:
        out += db.query_all("GSI2PK = :pk AND GSI2SK <= :now", db.values(pk=pk, now=now_iso + "~"),
                            index="GSI2", cap=5000)
    return out


# ------------------------------------------------------------------ feedback after a visit

def feedback_pk(cid: str) -> str:
    return db.key("FEEDBACK", cid)


def add_feedback(answer: dict[str, Any]) -> bool:
    """The answer (one per visit: ``attribute_not_exists``) and the clinic's and the doctor's counts, in one
    transaction. False when the visit was answered already."""
    cid, did, band = answer["clinic_id"], answer["doctor_id"], answer["band"]
    tx = db.Tx()
    # GSI3: the clinic's answers by when they were given (a period's answers, newest first)
    tx.put_new("answer", {"PK": feedback_pk(cid), "SK": db.key("VISIT", answer["booking_id"]), "type": "feedback",
                          **answer, "GSI3PK": db.key("FEEDBACKAT", cid),
                          "GSI3SK": f"{answer['created_at']}#{answer['booking_id']}"})
    for name, sk in (("clinic", "STATS#ALL"), ("doctor", db.key("STATS", "DOCTOR", did))):
        tx.update(name, feedback_pk(cid), sk, "SET #t = :t ADD answers :one, #b :one, score_sum :s",
                  names={"#t": "type", "#b": band}, expr_values=db.values(t="feedback_stats", one=1,
                                                                          s=answer["score"]))
    # what happened, for analytics: the score and who, never the comment
    tx.event("feedback.given", {k: answer[k] for k in ("booking_id", "clinic_id", "doctor_id", "score", "created_at")})
    try:
        tx.commit()
    except db.TxCancelled as exc:
        if exc.condition_failed("answer"):
            return False
        raise
    return True


def feedback_stats(cid: str, did: Optional[str]) -> dict[str, dict[str, Any]]:
    keys = [(feedback_pk(cid), "STATS#ALL")] + ([(feedback_pk(cid), db.key("STATS", "DOCTOR", did))] if did else [])
    return {i["SK"]: i for i in db.batch_get(keys)}


def feedback_page(cid: str, did: Optional[str], limit: int, cursor: Optional[str],
                  given: Optional[tuple[str, str]] = None) -> tuple[list[dict[str, Any]], Optional[str]]:
    """A page of answers, newest first; ``given``: only those given in [from, to) (UTC instants)."""
    if given:
        vals = {"pk": db.key("FEEDBACKAT", cid), "a": given[0], "b": given[1], **({"did": did} if did else {})}
        return db.page("GSI3PK = :pk AND GSI3SK BETWEEN :a AND :b", db.values(**vals), limit, cursor, index="GSI3",
                       filter_expression="doctor_id = :did" if did else None, forward=False)
    if did:
        return db.query_page(feedback_pk(cid), "VISIT#", limit, cursor, filter_expression="doctor_id = :did",
                             filter_values=db.values(did=did), forward=False)
    return db.query_page(feedback_pk(cid), "VISIT#", limit, cursor, forward=False)


def hour_bucket(prefix: str, at: datetime) -> str:
    """A sparse due index's partition: ``<prefix>#<UTC hour>`` (reminders ``REMIND``, care notices ``CAREDUE``)."""
    return db.key(prefix, at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H"))


def settle_due(item: dict[str, Any]) -> None:
    """Take a handled item out of its due index, unless it was moved to another time meanwhile (its ``GSI2SK``
    changed: a rescheduled visit's reminder stays for its new time)."""
    try:
        db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(item["PK"], item["SK"]),
                             ConditionExpression="GSI2SK = :sk", ExpressionAttributeValues=db.values(sk=item["GSI2SK"]))
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise


def due_in_buckets(prefix: str, now: datetime, catch_up_hours: int) -> list[dict[str, Any]]:
    """What is due by ``now`` in the last ``catch_up_hours`` hour partitions and this one (a missed run catches up),
    oldest hour first; one bounded query per hour, paged to the end."""
    out: list[dict[str, Any]] = []
    for back in range(catch_up_hours, -1, -1):
        out += db.query_all("GSI2PK = :pk AND GSI2SK <= :now",
                            db.values(pk=hour_bucket(prefix, now - timedelta(hours=back)), now=clock.iso(now) + "~"),
                            index="GSI2", cap=5000)
    return out
