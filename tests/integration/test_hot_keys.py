"""Keys the load model (docs/scale.md) says would pass 10 % of a partition are sharded, and the jobs that read
them still see every item, oldest first, on DynamoDB Local."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from chalicelib.booking import store as booking_store
from chalicelib.bootstrap import booking as booking_service
from chalicelib.core import aws, db, events


def _held(i: int, hold_until: str) -> dict:
    b = {"booking_id": f"01HOLD{i:020d}", "patient_id": f"P{i}", "doctor_id": f"D{i % 13}", "clinic_id": "C1",
         "branch_id": "B1", "service_id": "S1", "status": "held", "time_zone": "Europe/Moscow",
         "start_utc": "2026-12-20T08:00:00Z", "end_utc": "2026-12-20T08:30:00Z", "version": 1, "locks": [],
         "resources": [], "service": {"modality": "in_person", "resource_kinds": []}, "hold_until": hold_until}
    return booking_store.booking_item(b)


def test_lapsing_holds_spread_over_shards_and_the_job_releases_them_all_oldest_first(backend_env, fixed_clock):
    ddb = aws.client("dynamodb")
    table = backend_env["TABLE_NAME"]
    now = fixed_clock.now()
    due = [_held(i, (now - timedelta(minutes=300 - i)).strftime("%Y-%m-%dT%H:%M:%SZ")) for i in range(230)]
    later = [_held(1000 + i, (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")) for i in range(7)]
    for i in range(0, len(due + later), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": db.to_item(x)}}
                                                   for x in (due + later)[i:i + 25]]})

    shards = Counter(item["GSI2PK"] for item in due)
    assert set(shards) == {f"HOLDS#{n}" for n in range(booking_store.HOLD_SHARDS)}
    assert max(shards.values()) < 2 * len(due) / booking_store.HOLD_SHARDS  # no shard carries the load alone

    first = booking_store.due_holds(now.strftime("%Y-%m-%dT%H:%M:%SZ"), 100)
    assert [b["booking_id"] for b in first] == [f"01HOLD{i:020d}" for i in range(100)]  # the oldest, in order

    assert booking_service().expire_due_holds() == 230
    assert booking_store.due_holds(now.strftime("%Y-%m-%dT%H:%M:%SZ")) == []
    ahead = (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(booking_store.due_holds(ahead)) == 7  # the holds not yet due stayed


def test_pending_events_spread_over_the_outbox_shards_and_a_drain_takes_every_one(backend_env, fixed_clock):
    outbox = events.Outbox({"bench.tick": [("count", lambda event: None)]})
    made = []
    for i in range(0, 300, 25):
        tx = db.Tx()
        for j in range(25):
            tx.event("bench.tick", {"n": i + j})
        tx.commit()
        made += [i + j for j in range(25)]
    pending = outbox.due(fixed_clock.now() + timedelta(seconds=1), 1000)
    assert len(pending) == 300
    shards = Counter(events.shard_of(e["event_id"]) for e in pending)
    assert len(shards) == events.OUTBOX_SHARDS
    assert max(shards.values()) < 2 * 300 / events.OUTBOX_SHARDS
    result = outbox.drain(limit=100, rounds=10)
    assert result.done == 300
    assert outbox.due(datetime(2100, 1, 1, tzinfo=timezone.utc), 1000) == []
