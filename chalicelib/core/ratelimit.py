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
from typing import Any

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
        _update_retrying(
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


def _update_retrying(**kwargs: Any) -> Any:
    """One UpdateItem, sent again while a transaction holds the item (TransactionConflict: a refund of
    the same counter in flight); any other error, a failed condition included, is raised."""
    import random
    import time

    for attempt in range(8):
        try:
            return db.ddb().update_item(**kwargs)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != "TransactionConflictException" or attempt == 7:
                raise
        time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))


def clear(limit: Limit, subject: str, now: int) -> None:
    """Forget the hits of this window (login failures after a successful login)."""
    start, _ = window(limit, now)
    db.ddb().delete_item(TableName=db.table_name(), Key=db.item_key(_pk(limit, subject), _window_sk(start)))


# ------------------------------------------------------------------ several counters in one item

@dataclass(frozen=True)
class Part:
    """One counter kept as an attribute of a shared window item (see :func:`reserve_parts`)."""

    attr: str      # "hits" for the item's whole subject, "c_<hash>" for one client of it, ...
    limit: int
    code: str


def part_attr(prefix: str, value: str) -> str:
    """An attribute name for one member of a subject (a client address, a device), never the value itself."""
    return f"{prefix}_{keyed_hash('rate-part', prefix, value)[:20]}"


def _parts_args(parts: list[Part]) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    names = {f"#p{i}": p.attr for i, p in enumerate(parts)} | {"#type": "type"}
    adds = ", ".join(f"#p{i} :one" for i in range(len(parts)))
    cond = " AND ".join(f"(attribute_not_exists(#p{i}) OR #p{i} < :l{i})" for i in range(len(parts)))
    vals: dict[str, Any] = {"one": 1, **{f"l{i}": p.limit for i, p in enumerate(parts)}}
    return adds, cond, names, vals


def reserve_parts(name: str, subject: str, window_s: int, now: int, parts: list[Part]) -> None:
    """Count one attempt against several limits of one subject at once: one conditional UpdateItem
    that ADDs 1 to each part if every part is still below its limit (so a refused attempt counts
    nowhere, and parallel attempts are each counted exactly once). The attempt is counted *before*
    the work it guards (a password check), so racing guesses cannot slip past the limit; the caller
    gives it back with :func:`refund_parts_op` when the attempt turns out not to be a failure.
    429 with Retry-After (the window's end) naming the first part that is full."""
    start = now - now % window_s
    adds, cond, names, vals = _parts_args(parts)
    try:
        _update_retrying(
            TableName=db.table_name(), Key=db.item_key(_part_pk(name, subject), _window_sk(start)),
            UpdateExpression=f"ADD {adds} SET expires_at = if_not_exists(expires_at, :exp), "
                             "#type = if_not_exists(#type, :type)",
            ConditionExpression=cond, ExpressionAttributeNames=names,
            ExpressionAttributeValues=db.values(**vals, exp=start + window_s + _KEEP_S, type="rate"),
        )
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise
        item = db.get(_part_pk(name, subject), _window_sk(start)) or {}  # the refused path only
        full = next((p for p in parts if int(item.get(p.attr, 0)) >= p.limit), parts[0])
        raise too_many(full.code, start + window_s - now) from None


def refund_parts_op(name: str, subject: str, window_s: int, now: int, parts: list[Part]) -> dict[str, Any]:
    """The transaction item that gives back what :func:`reserve_parts` counted at ``now``."""
    start = now - now % window_s
    names = {f"#p{i}": p.attr for i, p in enumerate(parts)}
    return {"Update": {
        "TableName": db.table_name(), "Key": db.item_key(_part_pk(name, subject), _window_sk(start)),
        "UpdateExpression": "ADD " + ", ".join(f"#p{i} :minus" for i in range(len(parts))),
        "ExpressionAttributeNames": names, "ExpressionAttributeValues": db.values(minus=-1),
    }}


def _part_pk(name: str, subject: str) -> str:
    return db.key("RATE", name, keyed_hash("rate", name, subject)[:40])


# ------------------------------------------------------------------ the same limits inside a transaction

def tx_hit(tx: db.Tx, limit: Limit, subject: str, now: int) -> None:
    """Add one hit of ``limit`` to a transaction (and its cooldown, if it has one), named
    ``rate:<limit>`` and ``rate-last:<limit>``; :func:`raise_for` turns a cancellation into the 429."""
    start, end = window(limit, now)
    if limit.min_interval_s:
        tx.update(f"rate-last:{limit.name}", _pk(limit, subject), "LAST",
                  "SET last_at = :now, expires_at = :exp, #type = :type",
                  condition="attribute_not_exists(last_at) OR last_at <= :cool", names={"#type": "type"},
                  expr_values=db.values(now=now, exp=now + limit.min_interval_s + _KEEP_S,
                                        cool=now - limit.min_interval_s, type="rate-last"))
    tx.update(f"rate:{limit.name}", _pk(limit, subject), _window_sk(start),
              "ADD hits :one SET expires_at = if_not_exists(expires_at, :exp), #type = if_not_exists(#type, :type)",
              condition="attribute_not_exists(hits) OR hits < :limit", names={"#type": "type"},
              expr_values=db.values(one=1, exp=end + _KEEP_S, limit=limit.limit, type="rate"))


def tx_refund(tx: db.Tx, limit: Limit, subject: str, now: int) -> None:
    """Give back one hit counted at ``now`` (a failure that turned out not to be one)."""
    start, _ = window(limit, now)
    tx.update(f"rate-refund:{limit.name}", _pk(limit, subject), _window_sk(start), "ADD hits :minus",
              expr_values=db.values(minus=-1))


def raise_for(exc: db.TxCancelled, hits: list[tuple[Limit, str]], now: int) -> None:
    """If a limit added with :func:`tx_hit` cancelled the transaction, raise its 429 (Retry-After)."""
    for limit, subject in hits:
        if exc.condition_failed(f"rate-last:{limit.name}"):
            last = db.get(_pk(limit, subject), "LAST") or {}
            raise too_many(limit.cooldown_code or limit.code,
                           int(last.get("last_at", now)) + limit.min_interval_s - now) from None
        if exc.condition_failed(f"rate:{limit.name}"):
            raise too_many(limit.code, window(limit, now)[1] - now) from None


def commit_retrying(tx_factory: Any, attempts: int = 8) -> None:
    """Commit a transaction built by ``tx_factory()``, building and sending it again while it is only
    caught in another transaction on the same items (TransactionConflict: a shared counter under
    concurrent requests); a failed condition is raised at once as ``db.TxCancelled``."""
    import random
    import time

    for attempt in range(attempts):
        tx = tx_factory()
        try:
            tx.commit()
            return
        except db.TxCancelled as exc:
            conflicts = [c for c in exc.reasons.values() if c == "TransactionConflict"]
            if attempt == attempts - 1 or len(conflicts) != len(exc.reasons):
                raise
        time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))  # backoff, not a wait for time
