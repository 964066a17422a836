"""Benchmarks, each a ratio measured side by side in one run.

1. Cold start: a fresh interpreter importing ``app`` (module set-up included)
   against a fresh interpreter doing ``import boto3`` plus a DynamoDB client.
   Runs alternate so drift on the machine hits both alike. Target: <= 1.5.
2. Login: ``POST /auth/login`` through the Chalice test client on DynamoDB
   Local against the raw DynamoDB calls the same login makes (replayed with
   plain boto3 on the same table), and argon2id verification on its own.

Writes the results into docs/benchmarks.md between the BENCH markers.
Usage: ``make bench`` (or ``python -m bench.run``).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
RUNS = int(os.environ.get("BENCH_RUNS", "15"))

APP = "import app"
BASELINE = "import boto3; boto3.client('dynamodb', region_name='eu-central-1')"


def cold(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t


def bench_cold_start() -> dict:
    cold("pass"), cold(APP), cold(BASELINE)  # warm the file cache once for both
    app_t, base_t, empty_t = [], [], []
    for _ in range(RUNS):
        app_t.append(cold(APP))
        base_t.append(cold(BASELINE))
        empty_t.append(cold("pass"))
    empty = statistics.median(empty_t)
    a, b = statistics.median(app_t), statistics.median(base_t)
    return {
        "runs": RUNS, "app_ms": a * 1000, "baseline_ms": b * 1000, "interpreter_ms": empty * 1000,
        "ratio": a / b, "ratio_net": (a - empty) / (b - empty),
    }


def bench_login() -> dict:
    from moto import mock_aws

    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        os.environ.update({
            "STAGE": "test", "TABLE_NAME": "bench-table", "DYNAMODB_ENDPOINT": server.endpoint,
            "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "SMS_GATEWAY": "sns", "SMS_RESEND_COOLDOWN_S": "0",
            "SMS_PER_PHONE_PER_HOUR": "1000000", "SMS_PER_CLIENT_PER_HOUR": "1000000", "LOG_LEVEL": "WARNING",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        })
        with mock_aws(config={"core": {"passthrough": {"urls": [server.endpoint + ".*"]}}}):
            return _login_runs()
    finally:
        server.stop()


def _login_runs() -> dict:
    from chalice.test import Client
    from moto.sns.models import sns_backends

    from app import app
    from chalicelib.core import aws, db
    from chalicelib.core.table import ensure_table
    from chalicelib.identity import service as identity_service

    ddb = aws.client("dynamodb")
    ensure_table(ddb, "bench-table")
    phone, password = "+79160001122", "bench password 2026"
    body = {"phone": phone, "password": password, "first_name": "B", "last_name": "B", "birth_date": "1990-01-01",
            "consent": {"version": "2026-11", "accepted": True}, "language": "en"}
    outbox = sns_backends["123456789012"]["eu-central-1"].sms_messages
    headers = {"Content-Type": "application/json"}
    with Client(app, stage_name="test") as client:
        r = client.http.post("/auth/signup", headers=headers, body=json.dumps(body))
        challenge = json.loads(r.body)["challenge_id"]
        code = list(outbox.values())[-1][1].split(": ")[1][:6]
        r = client.http.post("/auth/signup/verify", headers=headers,
                             body=json.dumps({"challenge_id": challenge, "code": code}))
        assert r.status_code == 201, r.body

        calls: list[dict] = []

        def record(model=None, params=None, **_):
            calls.append({"op": model.name, "params": params})

        aws.add_hook("provide-client-params.dynamodb", record)
        login = json.dumps({"phone": phone, "password": password})
        client.http.post("/auth/login", headers=headers, body=login)  # warm-up, and record the calls
        aws.remove_hook("provide-client-params.dynamodb", record)
        recorded = list(calls)

        req_t, raw_t, argon_t = [], [], []
        user = db.get(f"USER#{db.get('PHONE#' + phone, 'PHONE')['user_id']}", "PROFILE")
        snake = {"GetItem": "get_item", "PutItem": "put_item", "UpdateItem": "update_item", "Query": "query",
                 "TransactWriteItems": "transact_write_items", "DeleteItem": "delete_item"}
        for _ in range(RUNS * 2):
            t = time.perf_counter()
            r = client.http.post("/auth/login", headers=headers, body=login)
            req_t.append(time.perf_counter() - t)
            assert r.status_code == 202, r.body
            t = time.perf_counter()
            for c in recorded:
                params = dict(c["params"])
                params.pop("ConditionExpression", None)  # replay the I/O, not the conditions
                if c["op"] == "PutItem":
                    params.pop("ExpressionAttributeValues", None)
                getattr(ddb, snake[c["op"]])(**params)
            raw_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            identity_service.password_matches(user["password_hash"], password)
            argon_t.append(time.perf_counter() - t)
    req, raw, argon = (statistics.median(x) * 1000 for x in (req_t, raw_t, argon_t))
    return {"runs": len(req_t), "dynamodb_calls": [c["op"] for c in recorded], "request_ms": req, "raw_ms": raw,
            "argon2_ms": argon, "ratio": req / raw, "ratio_without_argon2": (req - argon) / raw,
            "p90_request_ms": statistics.quantiles(req_t, n=10)[-1] * 1000}


def write_doc(cold_r: dict, login_r: dict) -> str:
    text = f"""<!-- BENCH:START (written by `make bench`; do not edit by hand) -->
Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}.

### Cold start (fresh interpreter, import and module set-up; median of {cold_r['runs']} alternating runs)

| what | median |
|---|---|
| `import app` (the whole Chalice app with every blueprint) | {cold_r['app_ms']:.0f} ms |
| `import boto3` + a DynamoDB client (baseline) | {cold_r['baseline_ms']:.0f} ms |
| an empty interpreter | {cold_r['interpreter_ms']:.0f} ms |
| **ratio app / baseline** (target <= 1.5) | **{cold_r['ratio']:.2f}** |
| ratio with the interpreter start subtracted from both | {cold_r['ratio_net']:.2f} |

### Login against the raw DynamoDB calls it makes (DynamoDB Local, median of {login_r['runs']} runs)

`POST /auth/login` makes {len(login_r['dynamodb_calls'])} DynamoDB calls: {', '.join(login_r['dynamodb_calls'])}.

| what | median |
|---|---|
| the request through the Chalice test client | {login_r['request_ms']:.1f} ms (p90 {login_r['p90_request_ms']:.1f} ms) |
| the same DynamoDB calls replayed with plain boto3 | {login_r['raw_ms']:.1f} ms |
| argon2id verification alone (19 MiB, t=2, p=1) | {login_r['argon2_ms']:.1f} ms |
| **ratio request / raw calls** | **{login_r['ratio']:.2f}** |
| ratio with argon2 taken out of the request | {login_r['ratio_without_argon2']:.2f} |
<!-- BENCH:END -->"""
    from bench.doc import write_section

    write_section("BENCH:START", "BENCH:END", text)
    return text


def main() -> int:
    cold_r = bench_cold_start()
    print(json.dumps(cold_r, indent=1))
    login_r = bench_login()
    print(json.dumps(login_r, indent=1))
    write_doc(cold_r, login_r)
    print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
