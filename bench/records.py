"""The medical card: a whole card read through the service against its raw DynamoDB calls plus decryption,
and the cold start of a records request with the encryption library imported on first use.

DynamoDB Local (127.0.0.1, stopped by pid) and a moto server for KMS (127.0.0.1, stopped here), one run:

1. **Whole card** (20 entries in each of the five sections, sealed as in use), ``N`` reads each way,
   interleaved (the order flips every pair), in this process with warm data-key caches (a busy container):
   - service: ``RecordsService.my_card`` (one consistent Query of the card's partition, every entry opened
     with AES-GCM, the card view built);
   - raw: the same Query sent with plain boto3 (paged), and every entry's payload opened with AES-GCM and
     parsed, the data keys already in hand.
2. **Cold start** (fresh interpreters, alternating, ``RUNS`` each):
   - app, the card: imports ``app`` and answers ``GET /me/card`` handed to the Lambda entry point (settings,
     clients, the route's models, the Query, five KMS ``Decrypt`` of the data keys, ``cryptography``
     imported by the first ``open``);
   - SDK: imports boto3, makes DynamoDB and KMS clients, runs the same Query and five Decrypt calls, and
     opens every entry with AES-GCM (importing ``cryptography`` too);
   - ``import app`` alone, lazily and with ``cryptography``'s AES-GCM imported eagerly: what every other
     route would pay if the records' encryption were imported at module level.

Writes docs/benchmarks.md between the RECORDS markers. ``python -m bench.records``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_RECORDS_N", "100"))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
TABLE = "bench-records"
PER_SECTION = 20

CARD_EVENT = """
import json
from app import app
event = {"resource": "/me/card", "path": "/me/card", "httpMethod": "GET",
         "headers": {"Accept": "application/json", "Host": "api.example"},
         "multiValueHeaders": {"Accept": ["application/json"], "Host": ["api.example"]},
         "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/me/card", "httpMethod": "GET", "stage": "api", "requestId": "cold-1",
                            "identity": {"sourceIp": "127.0.0.1"},
                            "authorizer": {"principalId": %(pid)r, "role": "patient", "sid": "bench", "mfa": "sms"}}}
r = app(event, None)
assert r["statusCode"] == 200, r
assert sum(len(v) for v in json.loads(r["body"])["sections"].values()) == %(entries)d
"""

SDK = """
import base64, json
import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
ddb, kms = boto3.client("dynamodb"), boto3.client("kms", endpoint_url=%(kms)r)
items, kw = [], {"TableName": %(table)r, "KeyConditionExpression": "PK = :pk", "ConsistentRead": True,
                 "ExpressionAttributeValues": {":pk": {"S": "CARD#" + %(pid)r}}}
while True:
    r = ddb.query(**kw)
    items += r["Items"]
    if not r.get("LastEvaluatedKey"):
        break
    kw["ExclusiveStartKey"] = r["LastEvaluatedKey"]
keys, opened = {}, 0
for i in items:
    if i["type"]["S"] != "card_entry":
        continue
    s = i["sealed"]["M"]
    blob = base64.b64decode(s["k"]["S"])
    if blob not in keys:
        keys[blob] = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"patient": %(pid)r,
                                 "section": i["section"]["S"]})["Plaintext"]
    aad = "|".join([%(pid)r, i["section"]["S"], i["entry_id"]["S"], i["version"]["N"]]).encode()
    json.loads(AESGCM(keys[blob]).decrypt(base64.b64decode(s["n"]["S"]), base64.b64decode(s["c"]["S"]), aad))
    opened += 1
assert opened == %(entries)d
"""

IMPORT_LAZY = """
import sys
import app
assert not any(m.startswith("cryptography") for m in sys.modules)
"""
IMPORT_EAGER = """
import app
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
"""


def environment(ddb_endpoint: str, kms_endpoint: str) -> dict[str, str]:
    return {"STAGE": "test", "TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": ddb_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_endpoint, "AWS_ENDPOINT": kms_endpoint, "AWS_REGION": "eu-central-1",
            "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "SMS_GATEWAY": "console", "EMAIL_GATEWAY": "console",
            "LOG_LEVEL": "WARNING"}


def fill(pid: str) -> Any:
    from chalicelib import bootstrap
    from chalicelib.core.web import Caller
    from chalicelib.records import models as rm
    from tests.unit.records_world import ENTRIES

    svc = bootstrap.records()
    me = Caller(pid, "patient", "bench")
    for section, entry in ENTRIES.items():
        for i in range(PER_SECTION):
            field = {"notes": "text", "allergies": "substance", "vaccinations": "vaccine"}.get(section, "name")
            svc.add_entry(me, section, rm.ENTRY_MODELS[section].model_validate({**entry, field: f"{entry[field]} {i}"}))
    return svc, me


def whole_card(svc: Any, me: Any, ddb_endpoint: str) -> dict[str, Any]:
    import base64

    import boto3
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from chalicelib.records import store

    raw = boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=ddb_endpoint)
    keys: dict[bytes, bytes] = {}
    for e in store.read_card_all(me.user_id)["entry"]:  # the data keys in hand, as the service's warm cache has
        blob = base64.b64decode(e["sealed"]["k"])
        keys[blob] = svc.sealer._plain_key(me.user_id, e["section"], blob)
    times: dict[str, list[float]] = {"service": [], "raw": []}

    def service() -> None:
        t = time.perf_counter()
        card = svc.my_card(me)
        times["service"].append(time.perf_counter() - t)
        assert sum(len(v) for v in card["sections"].values()) == 5 * PER_SECTION

    def raw_calls() -> None:
        t = time.perf_counter()
        items: list[dict[str, Any]] = []
        kw: dict[str, Any] = {"TableName": TABLE, "KeyConditionExpression": "PK = :pk", "ConsistentRead": True,
                              "ExpressionAttributeValues": {":pk": {"S": f"CARD#{me.user_id}"}}}
        while True:
            r = raw.query(**kw)
            items += r["Items"]
            if not r.get("LastEvaluatedKey"):
                break
            kw["ExclusiveStartKey"] = r["LastEvaluatedKey"]
        opened = 0
        for i in items:
            if i["type"]["S"] != "card_entry":
                continue
            s = i["sealed"]["M"]
            aad = f"{me.user_id}|{i['section']['S']}|{i['entry_id']['S']}|{i['version']['N']}".encode()
            json.loads(AESGCM(keys[base64.b64decode(s["k"]["S"])]).decrypt(
                base64.b64decode(s["n"]["S"]), base64.b64decode(s["c"]["S"]), aad))
            opened += 1
        times["raw"].append(time.perf_counter() - t)
        assert opened == 5 * PER_SECTION

    for _ in range(10):
        service()
        raw_calls()
    times = {"service": [], "raw": []}
    for i in range(N):
        for fn in ((service, raw_calls) if i % 2 == 0 else (raw_calls, service)):
            fn()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] * 1000 for k, v in times.items()}
    return {"n": N, "median_ms": med, "p90_ms": p90, "ratio": med["service"] / med["raw"]}


def cold(pid: str, env: dict[str, str]) -> dict[str, Any]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    child.update(env)
    codes = {"app_card": CARD_EVENT % {"pid": pid, "entries": 5 * PER_SECTION},
             "sdk_card": SDK % {"pid": pid, "entries": 5 * PER_SECTION, "table": TABLE, "kms": env["AWS_ENDPOINT"]},
             "import_lazy": IMPORT_LAZY, "import_eager": IMPORT_EAGER, "interpreter": "pass"}

    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child, check=True)
        return time.perf_counter() - t

    for code in codes.values():  # the file cache warmed once for all
        run(code)
    times: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(RUNS):
        for name, code in codes.items():
            times[name].append(run(code))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {"runs": RUNS, "median_ms": med, "ratio": med["app_card"] / med["sdk_card"],
            "eager_cost_ms": med["import_eager"] - med["import_lazy"]}


def main() -> int:
    import logging

    from moto.server import ThreadedMotoServer

    from local import dynamodb_local

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request lines
    server = dynamodb_local.start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        env = environment(server.endpoint, f"http://{host}:{port}")
        os.environ.update(env)
        from chalicelib import bootstrap
        from chalicelib.core import aws
        from chalicelib.core.ids import new_id
        from chalicelib.core.table import ensure_table

        bootstrap.reset()
        ensure_table(aws.client("dynamodb"), TABLE)
        pid = new_id()
        svc, me = fill(pid)
        card = whole_card(svc, me, server.endpoint)
        # as in AWS, the app is told its key (the local alias lookup is a test-stage convenience, one more call)
        start = cold(pid, {**env, "RECORDS_KMS_KEY_ID": bootstrap.kms().key_id()})
        result = {"whole_card": card, "cold_start": start}
        print(json.dumps(result, indent=1))
        m, c = card["median_ms"], start["median_ms"]
        text = f"""<!-- RECORDS:BEGIN (written by `python -m bench.records`; do not edit by hand) -->
**A whole card** (5 sections x {PER_SECTION} entries, sealed; {card['n']} reads each way, interleaved, DynamoDB Local,
one process, data keys cached as in a busy container): `RecordsService.my_card` against the same consistent
Query with plain boto3 plus AES-GCM opening and JSON parsing of every entry.

| path | median | p90 |
|---|---|---|
| service | {m['service']:.2f} ms | {card['p90_ms']['service']:.2f} ms |
| raw calls + decryption | {m['raw']:.2f} ms | {card['p90_ms']['raw']:.2f} ms |

Ratio service / raw (medians): **{card['ratio']:.2f}x**.

**Cold start of a card read** ({start['runs']} fresh interpreters each, alternating): the app importing itself and
answering `GET /me/card` through the Lambda entry point ({c['app_card']:.0f} ms) against boto3 with DynamoDB and KMS
clients doing the same Query, five KMS Decrypt calls and the AES-GCM opening ({c['sdk_card']:.0f} ms):
**{start['ratio']:.2f}x**.
`cryptography` is imported by the first `open`, never by `import app` (asserted): `import app` takes
{c['import_lazy']:.0f} ms, {c['import_eager']:.0f} ms with AES-GCM imported eagerly
({start['eager_cost_ms']:.0f} ms every other route would pay); the interpreter alone {c['interpreter']:.0f} ms.
Both card reads wait on the same six calls to DynamoDB Local and the moto server's KMS (slow per call here,
the larger part of both numbers); the difference is the app's own imports and first-request set-up.
<!-- RECORDS:END -->"""
        from bench.doc import write_section

        write_section("RECORDS:BEGIN", "RECORDS:END", text, heading="Medical card")
        return 0
    finally:
        moto.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
