"""DynamoDB items of the identity feature. All its key building lives here.

| item      | PK                 | SK        | GSI1PK / GSI1SK               |
|-----------|--------------------|-----------|-------------------------------|
| user      | USER#<id>          | PROFILE   |                               |
| phone     | PHONE#<e164>       | PHONE     |                               |
| challenge | CHALLENGE#<id>     | CHALLENGE |                               |
| session   | SESSION#<id>       | SESSION   | USER#<user id> / SESSION#<id> while live (revocation removes them) |
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import db

USER_SK = "PROFILE"


def user_pk(user_id: str) -> str:
    return db.key("USER", user_id)


def phone_pk(phone: str) -> str:
    return db.key("PHONE", phone)


def challenge_pk(challenge_id: str) -> str:
    return db.key("CHALLENGE", challenge_id)


def session_pk(session_id: str) -> str:
    return db.key("SESSION", session_id)



# ------------------------------------------------------------------ users and phones

def get_user(user_id: str) -> Optional[dict[str, Any]]:
    return db.get(user_pk(user_id), USER_SK)


def user_id_for_phone(phone: str) -> Optional[str]:
    item = db.get(phone_pk(phone), "PHONE")
    return item["user_id"] if item else None


def put_user_with_phone_ops(user: dict[str, Any]) -> list[dict[str, Any]]:
    """Transaction items that create a user and claim its phone (fails if the phone is taken)."""
    return [
        {"Put": {
            "TableName": db.table_name(),
            "Item": db.to_item({"PK": phone_pk(user["phone"]), "SK": "PHONE", "type": "phone",
                                "user_id": user["user_id"]}),
            "ConditionExpression": "attribute_not_exists(PK)",
        }},
        {"Put": {
            "TableName": db.table_name(),
            "Item": db.to_item({"PK": user_pk(user["user_id"]), "SK": USER_SK, "type": "user", **user}),
            "ConditionExpression": "attribute_not_exists(PK)",
        }},
    ]


def update_user(user_id: str, changes: dict[str, Any], expected_version: int,
                remove: tuple[str, ...] = ()) -> dict[str, Any]:
    """Set ``changes`` if the stored version is still ``expected_version``; returns the new item."""
    return db.update_versioned(user_pk(user_id), USER_SK, changes, expected_version, remove)


def update_user_op(user_id: str, changes: dict[str, Any], expected_version: int) -> dict[str, Any]:
    return db.update_versioned_op(user_pk(user_id), USER_SK, changes, expected_version)


def move_phone_ops(user_id: str, old_phone: str, new_phone: str) -> list[dict[str, Any]]:
    return [
        {"Delete": {
            "TableName": db.table_name(), "Key": db.item_key(phone_pk(old_phone), "PHONE"),
            "ConditionExpression": "user_id = :uid", "ExpressionAttributeValues": db.values(uid=user_id),
        }},
        {"Put": {
            "TableName": db.table_name(),
            "Item": db.to_item({"PK": phone_pk(new_phone), "SK": "PHONE", "type": "phone", "user_id": user_id}),
            "ConditionExpression": "attribute_not_exists(PK)",
        }},
    ]


# ------------------------------------------------------------------ named transaction items
# Each adds its items to a ``db.Tx`` under a fixed name, so a service maps a cancellation to what
# failed with ``TxCancelled.any(name)``: "challenge", "phone", "old_phone", "user", "session".

def tx_consume_challenge(tx: db.Tx, challenge_id: str, attempts_seen: int) -> db.Tx:
    return tx.add("challenge", consume_challenge_op(challenge_id, attempts_seen))


def tx_create_user(tx: db.Tx, user: dict[str, Any]) -> db.Tx:
    """Claim the phone ("phone", fails if taken) and create the user ("user")."""
    phone_op, user_op = put_user_with_phone_ops(user)
    return tx.add("phone", phone_op).add("user", user_op)


def tx_open_session(tx: db.Tx, session: dict[str, Any]) -> db.Tx:
    return tx.add("session", put_session_op(session))


def tx_update_user(tx: db.Tx, user_id: str, changes: dict[str, Any], expected_version: int) -> db.Tx:
    """"user": fails if the stored version is no longer ``expected_version``."""
    return tx.add("user", update_user_op(user_id, changes, expected_version))


def tx_move_phone(tx: db.Tx, user_id: str, old_phone: str, new_phone: str) -> db.Tx:
    """"old_phone" (still this user's) leaves, "phone" (fails if taken) is claimed."""
    release, claim = move_phone_ops(user_id, old_phone, new_phone)
    return tx.add("old_phone", release).add("phone", claim)


def tx_grant_step_up(tx: db.Tx, session_id: str, until: int) -> db.Tx:
    return tx.add("session", grant_step_up_op(session_id, until))


# ------------------------------------------------------------------ challenges

def put_challenge(challenge: dict[str, Any]) -> None:
    db.ddb().put_item(
        TableName=db.table_name(),
        Item=db.to_item({"PK": challenge_pk(challenge["challenge_id"]), "SK": "CHALLENGE",
                         "type": "challenge", **challenge}),
        ConditionExpression="attribute_not_exists(PK)",
    )


def tx_put_challenge(tx: db.Tx, challenge: dict[str, Any]) -> db.Tx:
    return tx.put_new("challenge", {"PK": challenge_pk(challenge["challenge_id"]), "SK": "CHALLENGE",
                                    "type": "challenge", **challenge})


def get_challenge(challenge_id: str) -> Optional[dict[str, Any]]:
    return db.get(challenge_pk(challenge_id), "CHALLENGE")


def count_attempt(challenge_id: str, max_attempts: int, now: int) -> Optional[dict[str, Any]]:
    """Spend one try on an open challenge; None when none is left (closed, used up or expired)."""
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(challenge_pk(challenge_id), "CHALLENGE"),
            UpdateExpression="SET attempts = attempts + :one",
            ConditionExpression="attribute_exists(PK) AND used = :f AND attempts < :max AND expires_at > :now",
            ExpressionAttributeValues=db.values(one=1, f=False, max=max_attempts, now=now),
            ReturnValues="ALL_NEW",
        )
    except Exception as exc:
        if db.is_condition_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def consume_challenge_op(challenge_id: str, attempts_seen: int) -> dict[str, Any]:
    """Mark a challenge used, once: a second use of the same code fails its condition."""
    return {"Update": {
        "TableName": db.table_name(), "Key": db.item_key(challenge_pk(challenge_id), "CHALLENGE"),
        "UpdateExpression": "SET used = :t",
        "ConditionExpression": "used = :f AND attempts = :a",
        "ExpressionAttributeValues": db.values(t=True, f=False, a=attempts_seen),
    }}


def replace_code(challenge_id: str, code_hash: str, now: int, expires_at: int, cooldown_s: int) -> bool:
    """A resend: new code, fresh tries and expiry; refused inside the cooldown."""
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(challenge_pk(challenge_id), "CHALLENGE"),
            UpdateExpression="SET code_hash = :h, attempts = :zero, sent_at = :now, expires_at = :exp, "
                             "resends = resends + :one",
            ConditionExpression="attribute_exists(PK) AND used = :f AND sent_at <= :cool",
            ExpressionAttributeValues=db.values(h=code_hash, zero=0, now=now, exp=expires_at, one=1, f=False,
                                                cool=now - cooldown_s),
        )
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise


# ------------------------------------------------------------------ second-factor failures, per account
# ``mfa_fails`` (consecutive wrong codes, across challenges) and ``mfa_wait_until`` (epoch seconds) live on
# the user item: counting a try returns the user, so it costs no read of its own.

def reserve_second_factor(user_id: str, max_failures: int, now: int) -> Optional[dict[str, Any]]:
    """Count one try if the account is neither waiting nor locked; the user after it, or None."""
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(user_pk(user_id), USER_SK),
            UpdateExpression="ADD mfa_fails :one",
            ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(mfa_fails) OR mfa_fails < :max) "
                                "AND (attribute_not_exists(mfa_wait_until) OR mfa_wait_until <= :now)",
            ExpressionAttributeValues=db.values(one=1, max=max_failures, now=now),
            ReturnValues="ALL_NEW",
        )
    except Exception as exc:
        if db.is_condition_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def tx_second_factor_wait(tx: db.Tx, user_id: str, until: int) -> db.Tx:
    """Make the next second-factor try wait until ``until`` (never shortening a longer wait)."""
    return tx.update("user", user_pk(user_id), USER_SK, "SET mfa_wait_until = :u",
                     condition="attribute_exists(PK) AND (attribute_not_exists(mfa_wait_until) OR mfa_wait_until < :u)",
                     expr_values=db.values(u=until))


def tx_reset_second_factor(tx: db.Tx, user_id: str) -> db.Tx:
    """A right code: the consecutive failures start again from 0."""
    return tx.update("user", user_pk(user_id), USER_SK, "SET mfa_fails = :zero, mfa_wait_until = :zero",
                     condition="attribute_exists(PK)", expr_values=db.values(zero=0))


# ------------------------------------------------------------------ sessions

def session_item(session: dict[str, Any]) -> dict[str, Any]:
    sid, uid = session["session_id"], session["user_id"]
    return {"PK": session_pk(sid), "SK": "SESSION", "type": "session",
            "GSI1PK": user_pk(uid), "GSI1SK": db.key("SESSION", sid), **session}


def put_session_op(session: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": db.table_name(), "Item": db.to_item(session_item(session)),
                    "ConditionExpression": "attribute_not_exists(PK)"}}


def get_session(session_id: str, consistent: bool = True) -> Optional[dict[str, Any]]:
    return db.get(session_pk(session_id), "SESSION", consistent=consistent)


def user_sessions(user_id: str) -> list[dict[str, Any]]:
    """Every session of a user still in the index, paged to the end. Revoking a session removes its
    index keys, so this reads live sessions only (plus any that lapsed since their last use; callers
    check expiry and drop those with ``revoke_sessions``)."""
    return db.query_prefix(user_pk(user_id), "SESSION#", index="GSI1")


def _update_sessions(session_ids: list[str], expression: str, condition: str, expr_values: dict[str, Any],
                     names: Optional[dict[str, str]] = None) -> int:
    """Apply one update to many sessions in transactions of at most 100 named items
    (``session:<id>``). A session whose condition fails (revoked or deleted meanwhile) is left out;
    one caught in a concurrent write (TransactionConflict) is tried again. Returns how many changed."""
    pending = list(dict.fromkeys(session_ids))
    changed = 0
    for _ in range(5):
        retry: list[str] = []
        for at in range(0, len(pending), db.Tx.MAX_ITEMS):
            chunk = pending[at:at + db.Tx.MAX_ITEMS]
            while chunk:
                tx = db.Tx()
                for sid in chunk:
                    tx.update(f"session:{sid}", session_pk(sid), "SESSION", expression, condition=condition,
                              expr_values=expr_values, names=names)
                try:
                    tx.commit()
                    changed += len(chunk)
                    break
                except db.TxCancelled as exc:
                    gone = {n.split(":", 1)[1] for n, code in exc.reasons.items() if code == "ConditionalCheckFailed"}
                    busy = {n.split(":", 1)[1] for n, code in exc.reasons.items() if code != "ConditionalCheckFailed"}
                    if not gone and not busy:
                        raise
                    retry += [sid for sid in chunk if sid in busy]
                    chunk = [sid for sid in chunk if sid not in gone and sid not in busy]
        if not retry:
            return changed
        pending = retry
    raise RuntimeError(f"{len(pending)} sessions stayed in conflicting writes")


_REVOKE = ("SET revoked = :t, revoked_reason = :r, revoked_at = :now "
           "REMOVE step_up_until, step_up_via, GSI1PK, GSI1SK")


def revoke_sessions(session_ids: list[str], reason: str, now: int) -> int:
    """Revoke many sessions at once (revoke-all, tidying): 100 per transaction, each leaving the
    user's index so no later list or revoke-all reads it again. The item stays (refresh-reuse and
    the authorizer see it revoked) until its TTL ``expires_at``."""
    return _update_sessions(session_ids, _REVOKE, "attribute_exists(PK) AND revoked = :f",
                            db.values(t=True, f=False, r=reason, now=now))


def rotate_refresh(session_id: str, presented_hash: str, new_hash: str, previous: list[str],
                   now: int, idle_expiry: int) -> Optional[dict[str, Any]]:
    """Swap the refresh hash if the presented one is current and the session alive."""
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(session_pk(session_id), "SESSION"),
            UpdateExpression="SET refresh_hash = :new, prev_hashes = :prev, generation = generation + :one, "
                             "last_used_at = :now, idle_expiry = :idle",
            ConditionExpression="refresh_hash = :cur AND revoked = :f AND absolute_expiry > :now "
                                "AND idle_expiry > :now",
            ExpressionAttributeValues=db.values(new=new_hash, prev=previous, one=1, now=now, idle=idle_expiry,
                                                cur=presented_hash, f=False),
            ReturnValues="ALL_NEW",
        )
    except Exception as exc:
        if db.is_condition_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def revoke_session(session_id: str, reason: str, now: int, user_id: Optional[str] = None) -> bool:
    cond = "attribute_exists(PK) AND revoked = :f"
    vals: dict[str, Any] = {"t": True, "f": False, "r": reason, "now": now}
    if user_id is not None:
        cond += " AND user_id = :uid"
        vals["uid"] = user_id
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(session_pk(session_id), "SESSION"),
            UpdateExpression=_REVOKE, ConditionExpression=cond, ExpressionAttributeValues=db.values(**vals),
        )
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise


def grant_step_up_op(session_id: str, until: int) -> dict[str, Any]:
    return {"Update": {
        "TableName": db.table_name(), "Key": db.item_key(session_pk(session_id), "SESSION"),
        "UpdateExpression": "SET step_up_until = :u, step_up_via = :via", "ConditionExpression": "revoked = :f",
        "ExpressionAttributeValues": db.values(u=until, f=False, via="code"),
    }}


def consume_step_up(session_id: str, now: int, fresh_code: bool = False) -> bool:
    """Use a fresh second factor once: true if one was granted and has not lapsed. With ``fresh_code``
    only a code verified through step-up counts (``step_up_via = "code"``), not the grant a new
    account's first session gets from its sign-up code."""
    cond = "revoked = :f AND step_up_until > :now"
    vals: dict[str, Any] = {"f": False, "now": now}
    if fresh_code:
        cond += " AND step_up_via = :via"
        vals["via"] = "code"
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(session_pk(session_id), "SESSION"),
            UpdateExpression="REMOVE step_up_until, step_up_via",
            ConditionExpression=cond, ExpressionAttributeValues=db.values(**vals),
        )
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise


def set_session_factor(session_id: str, factor: str) -> None:
    db.ddb().update_item(
        TableName=db.table_name(), Key=db.item_key(session_pk(session_id), "SESSION"),
        UpdateExpression="SET second_factor = :f", ConditionExpression="revoked = :no",
        ExpressionAttributeValues=db.values(f=factor, no=False),
    )


def set_sessions_role(session_ids: list[str], role: str) -> int:
    """Apply a role change to live sessions (the authorizer reads the role from there), batched."""
    return _update_sessions(session_ids, "SET #r = :r", "attribute_exists(PK) AND revoked = :f",
                            db.values(r=role, f=False), names={"#r": "role"})
