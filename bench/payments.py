"""Payments: webhook events per second against the raw DynamoDB calls they make, and payment creation
against those raw calls plus the Stripe round trip (the intent and the ephemeral key), in one run on
DynamoDB Local and the local Stripe server (tests/integration/test_payments_bench.py measures).

Writes docs/benchmarks.md between the PAYMENTS markers. ``python -m bench.payments``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from bench.doc import write_section

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "payments.json"
        env = {**os.environ, "PAYMENTS_BENCH": "1", "PAYMENTS_BENCH_OUT": str(out)}
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "tests/integration/test_payments_bench.py"], cwd=ROOT, env=env)
        if rc or not out.exists():
            return rc or 1
        r = json.loads(out.read_text())
    text = f"""<!-- PAYMENTS (bench/payments.py writes this section) -->
Medians of {r['n']} each, in one run on DynamoDB Local and the local Stripe server (`python -m bench.payments`).
The raw calls are the very DynamoDB calls the service made, replayed with plain boto3 on the same table.

| what | service | raw DynamoDB calls | ratio | events or payments per second |
|---|---|---|---|---|
| a `payment_intent.succeeded` (2 GetItem, 1 TransactWriteItems) | {r['hook_ms']:.1f} ms | {r['hook_raw_ms']:.1f} ms | {r['hook_ms'] / r['hook_raw_ms']:.2f}x | {1000 / r['hook_ms']:.0f} |
| creating a payment (BatchGetItem, GetItem, TransactWriteItems + Stripe) | {r['create_ms']:.1f} ms | {r['create_raw_ms']:.1f} ms + Stripe {r['stripe_ms']:.1f} ms | {r['create_ms'] / (r['create_raw_ms'] + r['stripe_ms']):.2f}x | {1000 / r['create_ms']:.0f} |
<!-- PAYMENTS END -->"""
    write_section("PAYMENTS", "PAYMENTS END", text, heading="Payments")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
