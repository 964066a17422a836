"""Analytics: the dashboard read against its raw DynamoDB calls, and what the counter update adds to a
booking's completion.

Against DynamoDB Local (started here on 127.0.0.1, stopped by pid), in this process, ``N`` of each,
interleaved (the order flips every pair):

1. **Dashboard read**: a month of day items of a clinic with 20 doctors (each doctor with a full set of
   counters) read and summarised by ``AnalyticsService`` (the Query of the days and the GetItem of the
   totals, then the figures), against the same Query and GetItem with plain boto3 (no summary).
2. **Counter update**: a completion's transaction (the conditional booking update and its event Put, as
   ``BookingService._change`` writes it), replayed with plain boto3 on fresh bookings, against the analytics
   handler for that booking (``apply_booking``: GetItem the booking, GetItem its contribution, one
   transaction). The ratio (completion + handler) / completion is what counters add to a completion's work
   (the handler runs after the request has answered, in the consumer).

Writes docs/benchmarks.md between the ANALYTICS markers. ``python -m bench.analytics``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.doc import write_section

N = int(os.environ.get("BENCH_ANALYTICS_N", "60"))
TABLE = "bench-analytics"
DOCTORS = 20


def environment(endpoint: str) -> dict[str, str]:
    return {"STAGE": "test", "TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": endpoint,
            "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "SMS_GATEWAY": "console",
            "EMAIL_GATEWAY": "console", "LOG_LEVEL": "WARNING"}


def ms(xs: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(xs) * 1000, 2),
            "p90_ms": round(statistics.quantiles(xs, n=10)[-1] * 1000, 2)}


def setup_month(cid: str) -> None:
    from chalicelib.analytics import store
    from chalicelib.core import db
    from chalicelib.core.ids import new_id

    doctors = [new_id() for _ in range(DOCTORS)]
    names = ("done|in_person", "done|video", "done|chat", "sum|RUB", "bmin", "smin", "noshow", "late", "concl",
             "c24", "fb_n", "fb_sum", "fb_prom", "fb_det", "uw|10", "uw|30")
    for day in range(1, 31):
        item = {"PK": store.day_pk(cid), "SK": store.day_sk(f"2026-11-{day:02d}"), "type": "analytics_day",
                **{f"d|{d}|{n}": 7 for d in doctors for n in names}, "c|bk|app": 140, "c|cx|patient": 9}
        db.ddb().put_item(TableName=TABLE, Item=db.to_item(item))


def a_booking(cid: str) -> dict[str, Any]:
    from chalicelib.core.ids import new_id

    start = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {"booking_id": new_id(), "kind": "scheduled", "patient_id": new_id(), "doctor_id": new_id(),
            "clinic_id": cid, "branch_id": new_id(), "service_id": new_id(),
            "service": {"name": {"ru": "Приём", "en": "Visit"}, "duration_minutes": 30, "modality": "in_person",
                        "price": {"amount": 300000, "currency": "RUB"}, "resource_kinds": []},
            "time_zone": "Europe/Kaliningrad", "start_utc": iso(start), "end_utc": iso(start + timedelta(minutes=30)),
            "local_day": "2026-11-20", "status": "confirmed", "created_at": 0, "version": 1, "locks": [],
            "resources": []}


def completion_tx(b: dict[str, Any]) -> list[dict[str, Any]]:
    from chalicelib.booking import store
    from chalicelib.core import db

    tx = db.Tx().add("booking", store.transition_op(b, ("confirmed",), {"status": "completed",
                                                                          "marked_at": "2026-11-20T08:40:00Z"},
                                                    remove=("GSI2PK", "GSI2SK")))
    tx.event("booking.completed", {k: b[k] for k in ("booking_id", "status", "patient_id", "doctor_id", "clinic_id")})
    return [op for _, op in tx.items()]


def main() -> int:
    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        os.environ.update(environment(server.endpoint))
        import boto3

        from chalicelib import bootstrap
        from chalicelib.analytics import store
        from chalicelib.booking import store as booking_store
        from chalicelib.core import aws, db
        from chalicelib.core.ids import new_id
        from chalicelib.core.table import ensure_table

        bootstrap.reset()
        raw = boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=server.endpoint)
        ensure_table(aws.client("dynamodb"), TABLE)
        svc = bootstrap.analytics()
        cid = new_id()
        setup_month(cid)
        first, last = datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date()

        def ours() -> None:
            items = store.days(cid, "2026-11-01", "2026-11-30")
            out = svc.summarise(items, first, last, total=store.total(cid))
            assert len(out["doctors"]) == DOCTORS

        def plain() -> None:
            resp = raw.query(TableName=TABLE, KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
                             ExpressionAttributeValues={":pk": {"S": store.day_pk(cid)}, ":a": {"S": "DAY#2026-11-01"},
                                                        ":b": {"S": "DAY#2026-11-30"}})
            assert len(resp["Items"]) == 30 and "LastEvaluatedKey" not in resp
            raw.get_item(TableName=TABLE, Key=db.item_key(store.day_pk(cid), "TOTAL"))

        read = {"ours": [], "plain": []}
        for i in range(N + 5):
            order = (("ours", ours), ("plain", plain)) if i % 2 else (("plain", plain), ("ours", ours))
            for name, fn in order:
                t = time.perf_counter()
                fn()
                if i >= 5:
                    read[name].append(time.perf_counter() - t)
        item_kb = len(json.dumps(db.from_item(raw.get_item(TableName=TABLE, Key=db.item_key(
            store.day_pk(cid), "DAY#2026-11-01"))["Item"]))) / 1024

        complete, handler = [], []
        for i in range(N + 5):
            b = a_booking(cid)
            raw.put_item(TableName=TABLE, Item=db.to_item(booking_store.booking_item(b)))
            ops = completion_tx(b)
            t = time.perf_counter()
            raw.transact_write_items(TransactItems=ops)
            t1 = time.perf_counter()
            svc.apply_booking(b["booking_id"])
            t2 = time.perf_counter()
            if i >= 5:
                complete.append(t1 - t)
                handler.append(t2 - t1)
        result = {
            "read": {"ours": ms(read["ours"]), "plain": ms(read["plain"]),
                     "ratio": round(statistics.median(read["ours"]) / statistics.median(read["plain"]), 2),
                     "day_item_kb": round(item_kb, 1)},
            "update": {"completion": ms(complete), "handler": ms(handler),
                       "ratio": round((statistics.median(complete) + statistics.median(handler))
                                      / statistics.median(complete), 2)},
        }
        print(json.dumps(result, indent=1))
        r, u = result["read"], result["update"]
        write_section("ANALYTICS:BEGIN", "ANALYTICS:END", f"""<!-- ANALYTICS:BEGIN (written by `python -m bench.analytics`; do not edit by hand) -->
DynamoDB Local, one process, {N} of each, interleaved.

| measure | median | p90 |
|---|---|---|
| dashboard month, 20 doctors: `AnalyticsService` (Query + GetItem + figures) | {r['ours']['median_ms']} ms | {r['ours']['p90_ms']} ms |
| the same Query + GetItem, plain boto3 | {r['plain']['median_ms']} ms | {r['plain']['p90_ms']} ms |
| completion transaction (booking update + event), plain boto3 | {u['completion']['median_ms']} ms | {u['completion']['p90_ms']} ms |
| analytics handler for it (`apply_booking`: 2 GetItem + 1 transaction) | {u['handler']['median_ms']} ms | {u['handler']['p90_ms']} ms |

Dashboard read / its raw calls: **{r['ratio']}x** (a day item of 20 doctors with full counters: {r['day_item_kb']} KB
as JSON). Completion with its counter update / completion alone: **{u['ratio']}x** (paid in the consumer, after
the doctor's request has answered).
<!-- ANALYTICS:END -->""", heading="Analytics")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
