"""The wallet: what spending cashback costs through ``Wallet`` against the raw DynamoDB calls it makes.

Against DynamoDB Local (started here on 127.0.0.1, stopped by pid), in this process, ``N`` spends each way,
interleaved (the order flips every pair), each on a wallet of its own with 12 lots (a year of visits):

- **wallet**: ``Wallet.read`` (one GetItem) + ``spend_ops`` + ``db.Tx(...).commit()`` (one TransactWriteItems
  of head, entry, spend record and event), as payments calls it;
- **raw**: the same GetItem and the same four-item TransactWriteItems, prebuilt, sent with a plain boto3 client.

Writes docs/benchmarks.md between the WALLET markers. ``python -m bench.wallet``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

N = int(os.environ.get("BENCH_WALLET_N", "200"))
TABLE = "bench-wallet"
LOTS = 12


def environment(endpoint: str) -> dict[str, str]:
    return {"STAGE": "test", "TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": endpoint, "AWS_REGION": "eu-central-1",
            "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "SMS_GATEWAY": "console", "EMAIL_GATEWAY": "console",
            "LOG_LEVEL": "WARNING"}


def a_wallet(now: datetime) -> tuple[str, str]:
    from chalicelib.core import db
    from chalicelib.core.ids import new_id
    from chalicelib.payments import ledger
    from chalicelib.payments import wallet_store as store

    pid, cid = new_id(), new_id()
    lots = {new_id(): {"amount": 1_000, "valid_until": ledger.iso(now + timedelta(days=30 * (i + 1))),
                       "source": new_id()} for i in range(LOTS)}
    head = {"patient_id": pid, "clinic_id": cid, "currency": "RUB", "lots": lots, "balance": ledger.total(lots),
            "version": 1}
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(store.head_item(head)))
    return pid, cid


def main() -> int:
    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        os.environ.update(environment(server.endpoint))
        import boto3

        from chalicelib import bootstrap
        from chalicelib.core import aws, db
        from chalicelib.core.ids import new_id
        from chalicelib.core.table import ensure_table
        from chalicelib.payments import wallet_store as store
        from chalicelib.payments.wallet import Wallet

        bootstrap.reset()
        ensure_table(aws.client("dynamodb"), TABLE)
        raw = boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=server.endpoint)
        now = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
        wallet = Wallet(clock_now=lambda: now)
        times: dict[str, list[float]] = {"wallet": [], "raw": []}

        def through_wallet() -> None:
            pid, cid = a_wallet(now)
            t = time.perf_counter()
            seen = wallet.read(pid, cid, now)
            db.Tx().extend(wallet.spend_ops(pid, cid, 2_500, new_id(), now, seen["version"])).commit()
            times["wallet"].append(time.perf_counter() - t)

        def raw_calls() -> None:
            pid, cid = a_wallet(now)
            ops = [op for _, op in Wallet(clock_now=lambda: now).spend_ops(pid, cid, 2_500, new_id(), now, 1)]
            pk, sk = store.head_key(pid, cid)
            t = time.perf_counter()
            raw.get_item(TableName=TABLE, Key=db.item_key(pk, sk), ConsistentRead=True)
            raw.transact_write_items(TransactItems=ops)
            times["raw"].append(time.perf_counter() - t)

        for _ in range(10):  # warm both paths
            through_wallet()
            raw_calls()
        times = {"wallet": [], "raw": []}
        for i in range(N):
            for fn in ((through_wallet, raw_calls) if i % 2 == 0 else (raw_calls, through_wallet)):
                fn()
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        p90 = {k: statistics.quantiles(v, n=10)[-1] * 1000 for k, v in times.items()}
        result = {"n": N, "median_ms": med, "p90_ms": p90, "ratio": med["wallet"] / med["raw"]}
        print(json.dumps(result, indent=1))
        text = f"""<!-- WALLET:BEGIN (written by `python -m bench.wallet`; do not edit by hand) -->
Spending cashback on a payment ({N} spends each way, interleaved, DynamoDB Local, one process, wallets of
{LOTS} lots): `Wallet.read` + `spend_ops` + the transaction, against the same GetItem and four-item
TransactWriteItems sent with plain boto3.

| path | median | p90 |
|---|---|---|
| wallet | {med['wallet']:.2f} ms | {p90['wallet']:.2f} ms |
| raw calls | {med['raw']:.2f} ms | {p90['raw']:.2f} ms |

Ratio wallet / raw (medians): **{result['ratio']:.2f}x**. The difference is Python: building the lots,
the entry and the event, serialising them.
<!-- WALLET:END -->"""
        from bench.doc import write_section

        write_section("WALLET:BEGIN", "WALLET:END", text, heading="Cashback wallet")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
