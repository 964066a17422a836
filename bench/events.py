"""Events: what writing an event with its change costs, and what the consumer adds per event.

Against DynamoDB Local (started here on 127.0.0.1, stopped by pid), in this process:

1. **Write**: a cancellation-like ``TransactWriteItems`` built with the booking store's own helpers
   (the conditional booking update ``store.transition_op`` plus the deletes of its six 5-minute time
   locks ``store.unlock_ops``), with and without the event Put that ``db.Tx.event`` adds, replayed
   with a plain boto3 client on fresh keys (a booking and locks written beforehand, untimed).
   ``N`` of each, interleaved (the order flips every pair); median and p90, ratio with / without.
2. **Consume**: ``N`` pending events dispatched by ``Outbox.drain`` (the scheduled consumer) with a
   registered no-op handler: DynamoDB calls per event (a botocore ``before-call`` hook) and events
   per second for one consumer and for two consumers draining the same events at once (threads);
   then with a handler that does one PutItem, against that PutItem alone with plain boto3 (ratio).
   Each consume scenario runs ``REPS`` times, alternating; the median rep is reported. Every run
   checks each handler ran exactly once per event and nothing is left pending.

Writes docs/benchmarks.md between the EVENTS markers. ``python -m bench.events``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
N = int(os.environ.get("BENCH_EVENTS_N", "200"))
REPS = int(os.environ.get("BENCH_EVENTS_REPS", "3"))
WARMUP = 10
LOCKS = 6  # a 30-minute visit: six 5-minute blocks
OUTBOX_TABLE, TX_TABLE = "bench-events", "bench-events-tx"


def environment(endpoint: str) -> dict[str, str]:
    return {"STAGE": "test", "TABLE_NAME": OUTBOX_TABLE, "DYNAMODB_ENDPOINT": endpoint,
            "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "SMS_GATEWAY": "console",
            "EMAIL_GATEWAY": "console", "LOG_LEVEL": "WARNING"}


def plain_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=endpoint)


def ms(xs: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(xs) * 1000, "p90_ms": statistics.quantiles(xs, n=10)[-1] * 1000}


def batch_put(raw: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Untimed set-up: items (already in DynamoDB JSON) 25 at a time, retrying what is left unprocessed."""
    for at in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": i}} for i in items[at:at + 25]]}
        for _ in range(8):
            request = raw.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
        if request:
            raise RuntimeError("DynamoDB Local left items unprocessed")


# ------------------------------------------------------------------ 1. the event in the change's transaction

def a_booking(i: int) -> dict[str, Any]:
    from chalicelib.booking import store
    from chalicelib.core.ids import new_id

    start = datetime(2027, 1, 4, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=30 * (i % 16))
    did = new_id()  # fresh doctor: fresh lock keys
    return {"booking_id": new_id(), "kind": "visit", "status": "confirmed", "patient_id": new_id(),
            "doctor_id": did, "clinic_id": new_id(), "branch_id": new_id(), "service_id": new_id(),
            "start_utc": start.isoformat().replace("+00:00", "Z"),
            "end_utc": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "time_zone": "Europe/Moscow", "version": 1, "policy": {"cancellation_window_hours": 24},
            "locks": [store.doctor_lock(did, start + timedelta(minutes=5 * k)) for k in range(LOCKS)]}


def cancel_tx(b: dict[str, Any], with_event: bool) -> list[dict[str, Any]]:
    """What ``BookingService.cancel`` sends (``_change``), built with the same helpers, for table TX_TABLE."""
    from chalicelib.booking import store
    from chalicelib.core import db

    changes = {"status": "cancelled_by_patient",
               "cancellation": {"by": "patient", "at": "2027-01-01T10:00:00Z", "late": False}}
    tx = db.Tx().add("booking", store.transition_op(b, ("offered", "proposed", "held", "confirmed"), changes,
                                                    remove=("GSI2PK", "GSI2SK")))
    tx.extend(store.unlock_ops(b)).extend(store.unresuse_ops(b))
    if with_event:
        snapshot = {k: b[k] for k in ("booking_id", "kind", "patient_id", "doctor_id", "clinic_id", "branch_id",
                                      "service_id", "start_utc", "end_utc", "time_zone")}
        tx.event("booking.cancelled", {**snapshot, "by": "patient", "late": False, "offer": True,
                                       "status": "cancelled_by_patient"})
    ops = [op for _, op in tx.items()]
    for op in ops:
        next(iter(op.values()))["TableName"] = TX_TABLE
    return ops


def bench_write(raw: Any) -> dict[str, Any]:
    from chalicelib.booking import store
    from chalicelib.core import db

    total = 2 * (N + WARMUP)
    bookings = [a_booking(i) for i in range(total)]
    items = []
    for b in bookings:
        items.append(db.to_item(store.booking_item(b)))
        items += [op["Put"]["Item"] for _, op in store.lock_ops(b, 1_900_000_000)]
    batch_put(raw, TX_TABLE, items)
    txs = [cancel_tx(b, with_event=i % 2 == 0) for i, b in enumerate(bookings)]  # even: with, odd: without
    times: dict[bool, list[float]] = {True: [], False: []}
    for pair in range(N + WARMUP):
        order = (2 * pair, 2 * pair + 1) if pair % 2 == 0 else (2 * pair + 1, 2 * pair)
        for i in order:
            t = time.perf_counter()
            raw.transact_write_items(TransactItems=txs[i])
            if pair >= WARMUP:
                times[i % 2 == 0].append(time.perf_counter() - t)
    for b in bookings[:2]:  # the change happened: booking cancelled, locks gone
        got = raw.get_item(TableName=TX_TABLE, Key=db.item_key(store.booking_pk(b["booking_id"]), "BOOKING"),
                           ConsistentRead=True)["Item"]
        assert got["status"]["S"] == "cancelled_by_patient"
        assert "Item" not in raw.get_item(TableName=TX_TABLE, Key=db.item_key(b["locks"][0], "LOCK"))
    with_e, without = ms(times[True]), ms(times[False])
    return {"runs": N, "items_without": len(txs[1]), "items_with": len(txs[0]),
            "event_bytes": len(json.dumps(txs[0][-1])), "with": with_e, "without": without,
            "ratio_median": with_e["median_ms"] / without["median_ms"],
            "ratio_p90": with_e["p90_ms"] / without["p90_ms"]}


# ------------------------------------------------------------------ 2. the consumer

class Calls:
    """DynamoDB calls by operation, from a before-call hook on the app's clients (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()

    def __call__(self, model=None, **_: Any) -> None:
        with self.lock:
            self.ops[model.name] += 1

    def take(self) -> Counter[str]:
        with self.lock:
            out, self.ops = self.ops, Counter()
        return out


def write_events(raw: Any, kind: str, n: int) -> list[str]:
    from chalicelib.core import db, events

    made = [events.event_item(kind, {"booking_id": f"b{i}", "by": "patient", "late": False, "offer": True})
            for i in range(n)]
    batch_put(raw, OUTBOX_TABLE, [db.to_item(e) for e in made])
    return [e["event_id"] for e in made]


def bench_consume(raw: Any) -> dict[str, Any]:
    from chalicelib.core import aws, clock, db
    from chalicelib.core.events import Outbox

    ran: Counter[str] = Counter()
    ran_lock = threading.Lock()

    def noop(event: dict[str, Any]) -> None:
        with ran_lock:
            ran[event["event_id"]] += 1

    def put_one(event: dict[str, Any]) -> None:
        with ran_lock:
            ran[event["event_id"]] += 1
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(
            {"PK": f"BENCHPUT#{event['event_id']}", "SK": "PUT", "type": "bench", "data": event["data"]}))

    outbox = Outbox({"bench.noop": [("noop", noop)], "bench.put": [("put_one", put_one)]})
    calls = Calls()
    aws.add_hook("before-call.dynamodb", calls)

    def consume(kind: str, consumers: int, n: int) -> dict[str, Any]:
        ids = write_events(raw, kind, n)
        ran.clear()
        calls.take()
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=consumers) as pool:
            results = [f.result() for f in [pool.submit(outbox.drain) for _ in range(consumers)]]
        wall = time.perf_counter() - t
        ops = calls.take()
        assert all(ran[e] == 1 for e in ids) and len(ran) == n, "each handler runs once per event"
        assert outbox.due(clock.now(), 10) == [], "nothing left pending"
        calls.take()
        return {"wall_s": wall, "events_per_s": n / wall, "ms_per_event": wall * 1000 / n,
                "calls_per_event": sum(ops.values()) / n, "calls": dict(ops),
                "busy": sum(r.busy for r in results), "done": sum(r.done for r in results)}

    def raw_puts(n: int) -> dict[str, Any]:
        from chalicelib.core.ids import new_id

        items = [db.to_item({"PK": f"BENCHPUT#{new_id()}", "SK": "PUT", "type": "bench",
                             "data": {"booking_id": f"b{i}", "by": "patient", "late": False, "offer": True}})
                 for i in range(n)]
        xs = []
        t0 = time.perf_counter()
        for item in items:
            t = time.perf_counter()
            raw.put_item(TableName=OUTBOX_TABLE, Item=item)
            xs.append(time.perf_counter() - t)
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "ms_per_event": wall * 1000 / n, **ms(xs)}

    try:
        consume("bench.noop", 1, WARMUP), consume("bench.put", 1, WARMUP), raw_puts(WARMUP)
        reps: dict[str, list[dict[str, Any]]] = {"noop_1": [], "noop_2": [], "put_1": [], "raw_put": []}
        for _ in range(REPS):
            reps["noop_1"].append(consume("bench.noop", 1, N))
            reps["noop_2"].append(consume("bench.noop", 2, N))
            reps["put_1"].append(consume("bench.put", 1, N))
            reps["raw_put"].append(raw_puts(N))
    finally:
        aws.remove_hook("before-call.dynamodb", calls)
    out: dict[str, Any] = {"events": N, "reps": REPS}
    for name, runs in reps.items():
        runs.sort(key=lambda r: r["ms_per_event"])
        out[name] = runs[len(runs) // 2]  # the median rep
        out[name]["ms_per_event_all"] = [round(r["ms_per_event"], 2) for r in runs]
    out["ratio_put_consumer_vs_raw_put"] = out["put_1"]["ms_per_event"] / out["raw_put"]["ms_per_event"]
    out["ratio_noop_consumer_vs_raw_put"] = out["noop_1"]["ms_per_event"] / out["raw_put"]["ms_per_event"]
    out["speedup_two_consumers"] = out["noop_2"]["events_per_s"] / out["noop_1"]["events_per_s"]
    return out


# ------------------------------------------------------------------ the doc

def calls_text(ops: dict[str, int], n: int) -> str:
    return ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(ops.items()))


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def spread(r: dict[str, Any]) -> str:
    """The median rep, and every rep (fastest to slowest): differences inside that range are noise."""
    return f"{r['ms_per_event']:.2f} (reps {' / '.join(f'{x:.1f}' for x in r['ms_per_event_all'])})"


def write_doc(w: dict[str, Any], c: dict[str, Any], measured: str = "") -> str:
    measured = measured or time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    n1, n2, p1, rp = c["noop_1"], c["noop_2"], c["put_1"], c["raw_put"]
    n = c["events"]
    wo, wi = w["without"], w["with"]
    write_rows = [
        row(f"booking update + {LOCKS} lock deletes ({w['items_without']} items)",
            f"{wo['median_ms']:.1f} ms", f"{wo['p90_ms']:.1f} ms"),
        row(f"the same + the event Put ({w['items_with']} items; the Put is ~{w['event_bytes']} bytes of JSON)",
            f"{wi['median_ms']:.1f} ms", f"{wi['p90_ms']:.1f} ms"),
        row("**ratio with / without**", f"**{w['ratio_median']:.2f}**", f"{w['ratio_p90']:.2f}"),
    ]
    consume_rows = [
        row("no-op handler, one consumer", f"{n1['calls_per_event']:.2f} ({calls_text(n1['calls'], n)})",
            f"{n1['events_per_s']:.0f}", spread(n1)),
        row("no-op handler, two consumers at once (threads)",
            f"{n2['calls_per_event']:.2f} ({calls_text(n2['calls'], n)}; {n2['busy']} leases found busy)",
            f"{n2['events_per_s']:.0f}", spread(n2)),
        row("handler doing one PutItem, one consumer", f"{p1['calls_per_event']:.2f}", f"{p1['events_per_s']:.0f}",
            spread(p1)),
        row("that PutItem alone, plain boto3", "1", f"{1000 / rp['ms_per_event']:.0f}",
            spread(rp) + f"; per call median {rp['median_ms']:.2f}, p90 {rp['p90_ms']:.2f}"),
        row("**ratio consumer with the PutItem handler / the PutItem alone**", "", "",
            f"**{c['ratio_put_consumer_vs_raw_put']:.2f}**"),
        row("ratio no-op consumer / one PutItem", "", "", f"{c['ratio_noop_consumer_vs_raw_put']:.2f}"),
        row("events/s, two consumers / one", "", "", f"{c['speedup_two_consumers']:.2f}"),
    ]
    nl = "\n"
    text = f"""<!-- EVENTS:BEGIN (written by `python -m bench.events`; do not edit by hand) -->
Measured {measured}, {os.cpu_count()} cores, DynamoDB Local (in memory),
one process.

### Writing the event with the change (cancellation-like TransactWriteItems, {w['runs']} of each, interleaved)

| what | median | p90 |
|---|---|---|
{nl.join(write_rows)}

### The consumer per event (`Outbox.drain`, {n} pending events, median of {c['reps']} alternating reps)

| what | DynamoDB calls / event | events/s | ms / event (median rep; every rep) |
|---|---|---|---|
{nl.join(consume_rows)}

Every rep checked that each handler ran exactly once per event and no event was left pending.
<!-- EVENTS:END -->"""
    from bench.doc import write_section

    write_section("EVENTS:BEGIN", "EVENTS:END", text, heading="Events")
    return text


def main() -> int:
    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        os.environ.update(environment(server.endpoint))
        from chalicelib import bootstrap
        from chalicelib.core import aws
        from chalicelib.core.table import ensure_table

        bootstrap.reset()
        raw = plain_client(server.endpoint)
        ensure_table(aws.client("dynamodb"), OUTBOX_TABLE)
        ensure_table(raw, TX_TABLE)
        t = time.perf_counter()
        w = bench_write(raw)
        print(json.dumps({"write": w}, indent=1), flush=True)
        c = bench_consume(raw)
        print(json.dumps({"consume": c}, indent=1))
        print(f"measured in {time.perf_counter() - t:.0f} s")
        write_doc(w, c)
        print(f"written to {DOC.relative_to(ROOT)}")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
