"""A first request against the SDK alone: fresh processes, side by side, on DynamoDB Local.

- app: a fresh interpreter imports ``app`` and answers its first request, ``GET /catalog/clinics?city=...``
  handed to the Lambda entry point as API Gateway would (settings, the DynamoDB client, the route's models,
  one Query on GSI1, the JSON response);
- SDK: a fresh interpreter imports boto3, makes a DynamoDB client and runs the same Query.

Runs alternate, so drift on the machine hits both alike; the medians' ratio is the result (target <= 1.3).
With ``--profile`` it prints the app's import-time and first-request profile instead.
Writes docs/benchmarks.md between the COLDSTART markers. ``python -m bench.coldstart``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
TABLE = "bench-coldstart"
CITY = "Калининград"

APP = """
import json
from app import app
event = {"resource": "/catalog/clinics", "path": "/catalog/clinics", "httpMethod": "GET",
         "headers": {"Accept": "application/json", "Host": "api.example"},
         "multiValueHeaders": {"Accept": ["application/json"], "Host": ["api.example"]},
         "queryStringParameters": {"city": %(city)r}, "multiValueQueryStringParameters": {"city": [%(city)r]},
         "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/catalog/clinics", "httpMethod": "GET", "stage": "api",
                            "requestId": "cold-1", "identity": {"sourceIp": "127.0.0.1"}}}
r = app(event, None)
assert r["statusCode"] == 200, r
assert json.loads(r["body"])["items"] == []
"""

SDK = """
import boto3
c = boto3.client("dynamodb")
r = c.query(TableName=%(table)r, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk AND begins_with(GSI1SK, :p)",
            ExpressionAttributeValues={":pk": {"S": "CITY#" + %(city)r}, ":p": {"S": "CLINIC#"}}, Limit=21)
assert r["Items"] == []
"""


def environment(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({
        "STAGE": "test", "TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": endpoint, "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x", "LOG_LEVEL": "WARNING", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    })
    return env


def run(code: str, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t


def measure(endpoint: str, runs: int) -> dict:
    env = environment(endpoint)
    app_code, sdk_code = APP % {"city": CITY}, SDK % {"table": TABLE, "city": CITY}
    run("pass", env), run(app_code, env), run(sdk_code, env)  # the file cache warmed once for all
    app_t, sdk_t, empty_t = [], [], []
    for _ in range(runs):
        app_t.append(run(app_code, env))
        sdk_t.append(run(sdk_code, env))
        empty_t.append(run("pass", env))
    a, s, e = statistics.median(app_t), statistics.median(sdk_t), statistics.median(empty_t)
    return {"runs": runs, "app_ms": a * 1000, "sdk_ms": s * 1000, "interpreter_ms": e * 1000,
            "ratio": a / s, "ratio_net": (a - e) / (s - e)}


def profile(endpoint: str) -> None:
    env = environment(endpoint)
    code = ("import cProfile, pstats\n"
            f"cProfile.run({APP % {'city': CITY}!r}, '/tmp/coldstart.prof')\n"
            "pstats.Stats('/tmp/coldstart.prof').sort_stats('cumulative').print_stats(45)\n")
    subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env, check=True)


def render(r: dict) -> str:
    return f"""<!-- COLDSTART:BEGIN (written by `python -m bench.coldstart`) -->
### A first request against the SDK alone (fresh processes, median of {r['runs']} alternating runs)

| fresh process | median |
|---|---|
| `import app`, then its first request (`GET /catalog/clinics`, one Query on DynamoDB Local) \
through the Lambda entry point | {r['app_ms']:.0f} ms |
| `import boto3`, a DynamoDB client and the same Query | {r['sdk_ms']:.0f} ms |
| an empty interpreter | {r['interpreter_ms']:.0f} ms |
| **ratio app / SDK** (target <= 1.3) | **{r['ratio']:.2f}** |
| ratio with the interpreter start subtracted from both | {r['ratio_net']:.2f} |
<!-- COLDSTART:END -->"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import boto3

    from chalicelib.core.table import ensure_table
    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        ensure_table(boto3.client("dynamodb", endpoint_url=server.endpoint, region_name="eu-central-1",
                                  aws_access_key_id="x", aws_secret_access_key="x"), TABLE)
        if args.profile:
            profile(server.endpoint)
            return 0
        r = measure(server.endpoint, RUNS)
    finally:
        server.stop()
    print(json.dumps(r, indent=1))
    if not args.no_write:
        from bench.doc import write_section

        write_section("COLDSTART:BEGIN", "COLDSTART:END", render(r), heading="Cold start with a first request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
