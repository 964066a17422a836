"""Events written with their change, and the consumers that run the follow-ups.

A feature records what happened (a booking cancelled, a hold lapsed, time freed) as an event item
in the same ``TransactWriteItems`` as the change itself (``db.Tx.event``). Nothing runs after the
commit inside the request: a request that committed never answers 5xx because a follow-up failed.

| item            | PK             | SK              | GSI2PK / GSI2SK (only while pending)      |
|-----------------|----------------|-----------------|-------------------------------------------|
| event           | EVENT#<eid>    | EVENT           | OUTBOX#<shard> / <due at>#<eid>           |
| handler done    | EVENT#<eid>    | DONE#<handler>  |                                           |
| dead letter     | EVENT#<eid>    | EVENT           | DEADLETTER / <dead at>#<eid>              |

Consumers: a DynamoDB Streams consumer in AWS (new event items, at once), the scheduled drain (every
minute, for retries and anything the stream missed), the local runner in ``make run``, and
``Outbox.drain`` in tests. Each handler of an event runs at most once to success: a marker item per
(event, handler) is written when it succeeds, and one consumer at a time holds an event (a lease).
A failing handler is retried with a growing delay and after ``max_attempts`` the event moves to the
dead-letter partition and is logged; the request that caused it has long answered.

The pending index is sharded (``OUTBOX_SHARDS`` partitions, by event id) so that a platform-wide
burst never lands on one partition key.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from chalicelib.core import clock, db, log
from chalicelib.core.ids import new_id

OUTBOX_SHARDS = 16
DEAD_LETTER = "DEADLETTER"
# Longer than any consumer can run: every function's timeout is below it (29 s in the stack; a test holds
# this), so a lease lapses only for a consumer that died, and no handler runs twice at once.
LEASE_SECONDS = 60
KEEP_DONE_DAYS = 7

Handler = Callable[[dict[str, Any]], None]


def event_pk(eid: str) -> str:
    return db.key("EVENT", eid)


def shard_of(eid: str) -> str:
    return f"OUTBOX#{zlib.crc32(eid.encode()) % OUTBOX_SHARDS}"


def event_item(kind: str, data: dict[str, Any], now: Optional[datetime] = None) -> dict[str, Any]:
    now = now or clock.now()
    eid = new_id()
    at = clock.iso(now)
    return {"PK": event_pk(eid), "SK": "EVENT", "type": "event", "event_id": eid, "kind": kind, "data": data,
            "status": "pending", "attempts": 0, "created_at": at,
            "GSI2PK": shard_of(eid), "GSI2SK": f"{at}#{eid}"}


def get_event(eid: str) -> Optional[dict[str, Any]]:
    return db.get(event_pk(eid), "EVENT")


def dead_letters() -> list[dict[str, Any]]:
    return db.query_prefix(DEAD_LETTER, "", index="GSI2")


def _iso(dt: datetime) -> str:
    return clock.iso(dt)


def _settle(event: dict[str, Any], expression: str, **vals: Any) -> None:
    """Move an event on (done, later, dead) only while it is still pending; if another consumer whose
    lease had lapsed settled it meanwhile, its word stands."""
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(event_pk(event["event_id"]), "EVENT"),
            UpdateExpression=expression, ConditionExpression="#st = :pending",
            ExpressionAttributeNames={"#st": "status"}, ExpressionAttributeValues=db.values(pending="pending", **vals))
    except Exception as exc:
        if not db.is_condition_failure(exc):
            raise


@dataclass
class DrainResult:
    done: int = 0
    retried: int = 0
    dead: int = 0
    busy: int = 0
    kinds: list[str] = field(default_factory=list)


class Outbox:
    """Runs the handlers registered for each kind of event, each at most once to success."""

    def __init__(self, handlers: dict[str, list[tuple[str, Handler]]], max_attempts: int = 5) -> None:
        self.handlers = handlers
        self.max_attempts = max_attempts

    # ------------------------------------------------------------------ one event

    def _lease(self, event: dict[str, Any], now: datetime) -> Optional[dict[str, Any]]:
        try:
            resp = db.ddb().update_item(
                TableName=db.table_name(), Key=db.item_key(event_pk(event["event_id"]), "EVENT"),
                UpdateExpression="SET lease_until = :until, attempts = attempts + :one",
                ConditionExpression="#st = :pending AND (attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=db.values(until=_iso(now + timedelta(seconds=LEASE_SECONDS)), one=1,
                                                    pending="pending", now=_iso(now)),
                ReturnValues="ALL_NEW")
        except Exception as exc:
            if db.is_condition_failure(exc):
                return None
            raise
        return db.from_item(resp["Attributes"])

    def dispatch(self, event: dict[str, Any]) -> str:
        """Run the event's handlers that have not succeeded yet: 'done', 'retry', 'dead' or 'busy'."""
        now = clock.now()
        leased = self._lease(event, now)
        if leased is None:
            return "busy"  # another consumer holds it, or it is already done
        eid, kind = leased["event_id"], leased["kind"]
        pk = event_pk(eid)
        done = {i["SK"][5:] for i in db.query_prefix(pk, "DONE#")}
        failed = False
        for name, fn in self.handlers.get(kind, []):
            if name in done:
                continue
            try:
                fn(leased)
            except Exception as exc:  # a follow-up failed: retry later, never fail the cause
                failed = True
                log.warning("event.handler_failed", event_id=eid, kind=kind, handler=name,
                            error=type(exc).__name__, attempt=int(leased["attempts"]))
                continue
            db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
                "PK": pk, "SK": f"DONE#{name}", "type": "event_done", "handler": name,
                "expires_at": int(now.timestamp()) + KEEP_DONE_DAYS * 86400}))
        if not failed:
            self._finish(leased, now)
            return "done"
        if int(leased["attempts"]) >= self.max_attempts:
            self._bury(leased, now)
            return "dead"
        self._retry_later(leased, now)
        return "retry"

    @staticmethod
    def _finish(event: dict[str, Any], now: datetime) -> None:
        _settle(event, "SET #st = :done, done_at = :now, expires_at = :exp REMOVE GSI2PK, GSI2SK, lease_until",
                done="done", now=_iso(now), exp=int(now.timestamp()) + KEEP_DONE_DAYS * 86400)

    @staticmethod
    def _retry_later(event: dict[str, Any], now: datetime) -> None:
        due = _iso(now + timedelta(seconds=min(3600, 15 * 2 ** (int(event["attempts"]) - 1))))
        _settle(event, "SET GSI2SK = :sk REMOVE lease_until", sk=f"{due}#{event['event_id']}")

    @staticmethod
    def _bury(event: dict[str, Any], now: datetime) -> None:
        _settle(event, "SET #st = :dead, GSI2PK = :pk, GSI2SK = :sk REMOVE lease_until",
                dead="dead", pk=DEAD_LETTER, sk=f"{_iso(now)}#{event['event_id']}")
        log.error("event.dead_letter", event_id=event["event_id"], kind=event["kind"],
                  attempts=int(event["attempts"]))

    # ------------------------------------------------------------------ consumers

    def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Pending events due by ``now``, oldest first, at most ``limit`` (a batch; the next run takes the rest)."""
        out: list[dict[str, Any]] = []
        for shard in range(OUTBOX_SHARDS):
            items, _ = db.page("GSI2PK = :pk AND GSI2SK <= :now",
                               db.values(pk=f"OUTBOX#{shard}", now=_iso(now) + "~"), min(limit, 100), None,
                               index="GSI2")
            out += items
        return sorted(out, key=lambda e: e["GSI2SK"])[:limit]

    def drain(self, limit: int = 100, rounds: int = 10) -> DrainResult:
        """Dispatch due events until none are due (or ``rounds`` batches): the scheduled consumer, the
        local runner and the tests' drain helper. Handlers may write new events; later rounds take them."""
        result = DrainResult()
        for _ in range(rounds):
            batch = self.due(clock.now(), limit)
            if not batch:
                break
            progressed = False
            for event in batch:
                outcome = self.dispatch(event)
                if outcome == "done":
                    result.done += 1
                    result.kinds.append(event["kind"])
                    progressed = True
                elif outcome == "retry":
                    result.retried += 1
                elif outcome == "dead":
                    result.dead += 1
                else:
                    result.busy += 1
            if not progressed:
                break
        return result

    def consume_stream(self, records: list[dict[str, Any]]) -> int:
        """DynamoDB Streams records (new images): dispatch each new event item at once."""
        handled = 0
        for record in records:
            if record.get("eventName") != "INSERT":
                continue
            image = (record.get("dynamodb") or {}).get("NewImage") or {}
            item = db.from_item(image) or {}
            if item.get("type") == "event" and item.get("status") == "pending":
                self.dispatch(item)
                handled += 1
        return handled
