"""Fixed-window limits kept in DynamoDB, counted atomically.

Each limited subject has one counter item per window (``SK=W#<window start>``, windows aligned to
the epoch). A hit is one conditional ``UpdateItem``: ``ADD hits :one`` if the count is still below
the limit. DynamoDB applies concurrent updates of an item one after another, so parallel requests are
each counted exactly once and none is refused while the window still has room (a read-then-write
could refuse falsely or count twice). The item's ``expires_at`` (TTL) is the window's end plus a day;
reads never rely on TTL, the window start is in the key.

A limit with a minimum interval (the SMS resend cooldown) keeps the time of its last hit in one more
item (``SK=LAST``), set by its own conditional ``UpdateItem`` before the count, so a refused
cooldown never spends a count.

Trade-off of fixed windows, written down: at most ``limit`` hits in each window, so across a window
boundary up to twice the limit can arrive close together (10 login failures at 06:14:59 and 10 more
at 06:15:00). Per aligned window the bound is exact.

Keys are keyed hashes, so no phone number or IP appears in the table's keys.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import db
from chalicelib.core.crypto import keyed_hash
from chalicelib.core.errors import too_many

_KEEP_S = 86400  # counters stay a day past their window before TTL deletes them


@dataclass(frozen=True)
class Limit:
    name: str          # e.g. "sms-phone"
    limit: int         # hits allowed in the window
    window_s: int
    code: str          # problem code when exceeded
    min_interval_s: int = 0
    cooldown_code: str = ""


def _pk(limit: Limit, subject: str) -> str:
    return db.key("RATE", limit.name, keyed_hash("rate", limit.name, subject)[:40])


def window(limit: Limit, now: int) -> tuple[int, int]:
    """Start and end (epoch seconds) of the window that holds ``now``."""
    start = now - now % limit.window_s
    return start, start + limit.window_s


def _window_sk(start: int) -> str:
    return f"W#{start}"


def _count(limit: Limit, subject: str, now: int) -> int:
    start, _ = window(limit, now)
    item = db.get(_pk(limit, subject), _window_sk(start)) or {}
    return int(item.get("hits", 0))


def check(limit: Limit, subject: str, now: int) -> None:
    """Raise 429 if ``subject`` has no hit left in this window, without counting one."""
    if _count(limit, subject, now) >= limit.limit:
        raise too_many(limit.code, window(limit, now)[1] - now)


def _cooldown(limit: Limit, subject: str, now: int) -> None:
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(_pk(limit, subject), "LAST"),
            UpdateExpression="SET last_at = :now, expires_at = :exp, #type = :type",
            ConditionExpression="attribute_not_exists(last_at) OR last_at <= :cool",
            ExpressionAttributeNames={"#type": "type"},
            ExpressionAttributeValues=db.values(now=now, exp=now + limit.min_interval_s + _KEEP_S,
                                                cool=now - limit.min_interval_s, type="rate-last"),
        )
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise
        last = db.get(_pk(limit, subject), "LAST") or {}
        raise too_many(limit.cooldown_code or limit.code,
                       int(last.get("last_at", now)) + limit.min_interval_s - now) from None


def hit(limit: Limit, subject: str, now: int) -> None:
    """Count one hit for ``subject``, or raise 429 with Retry-After if this window is full.
    One conditional UpdateItem (two with a minimum interval)."""
    if limit.min_interval_s:
        _cooldown(limit, subject, now)
    start, end = window(limit, now)
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(_pk(limit, subject), _window_sk(start)),
            UpdateExpression="ADD hits :one SET expires_at = if_not_exists(expires_at, :exp), "
                             "#type = if_not_exists(#type, :type)",
            ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
            ExpressionAttributeNames={"#type": "type"},
            ExpressionAttributeValues=db.values(one=1, exp=end + _KEEP_S, limit=limit.limit, type="rate"),
        )
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise
        raise too_many(limit.code, end - now) from None


def clear(limit: Limit, subject: str, now: int) -> None:
    """Forget the hits of this window (login failures after a successful login)."""
    start, _ = window(limit, now)
    db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(_pk(limit, subject), _window_sk(start)))
