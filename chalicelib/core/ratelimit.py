"""Sliding-window limits kept in DynamoDB (one item per limited key).

Each item holds the epoch seconds of the hits inside the window; a write is
conditional on the version read, so two Lambdas cannot both take the last
slot. Keys are keyed hashes, so no phone number or IP appears in the table's
keys.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import db
from chalicelib.core.crypto import keyed_hash
from chalicelib.core.errors import too_many


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


def _load(limit: Limit, subject: str, now: int) -> tuple[list[int], int]:
    item = db.get(_pk(limit, subject), "RATE") or {}
    hits = [int(h) for h in item.get("hits", []) if int(h) > now - limit.window_s]
    return hits, int(item.get("version", 0))


def _raise_if_over(limit: Limit, hits: list[int], now: int) -> None:
    if limit.min_interval_s and hits and now - max(hits) < limit.min_interval_s:
        raise too_many(limit.cooldown_code or limit.code, max(hits) + limit.min_interval_s - now)
    if len(hits) >= limit.limit:
        raise too_many(limit.code, min(hits) + limit.window_s - now)


def check(limit: Limit, subject: str, now: int) -> None:
    """Raise 429 if ``subject`` is over ``limit`` now, without counting a hit."""
    hits, _ = _load(limit, subject, now)
    _raise_if_over(limit, hits, now)


def hit(limit: Limit, subject: str, now: int) -> None:
    """Count one hit for ``subject``, or raise 429 with Retry-After if over the limit."""
    for _ in range(4):
        hits, version = _load(limit, subject, now)
        _raise_if_over(limit, hits, now)
        hits.append(now)
        try:
            db.ddb().put_item(
                TableName=db.table_name(),
                Item=db.to_item({
                    "PK": _pk(limit, subject), "SK": "RATE", "type": "rate",
                    "hits": hits, "version": version + 1, "expires_at": now + limit.window_s,
                }),
                ConditionExpression="attribute_not_exists(PK) OR version = :v",
                ExpressionAttributeValues=db.values(v=version),
            )
            return
        except Exception as exc:
            if not db.is_condition_failure(exc):
                raise
    raise too_many(limit.code, 1)


def clear(limit: Limit, subject: str) -> None:
    db.ddb().delete_item(TableName=db.table_name(), Key={"PK": {"S": _pk(limit, subject)}, "SK": {"S": "RATE"}})
