"""Booking under load: 50 concurrent clients against the local server on DynamoDB Local.

- 4 server processes (``local.serve``: Chalice's local server, one request at a time per
  process, as 4 Lambda containers) share one DynamoDB Local;
- the demo clinic is seeded (one doctor, 30-minute visits, 8 a day on weekdays);
- 50 patients each try 10 bookings of slots from a list read once at the start, so they
  collide as real patients would; we report throughput, p50/p99, status counts, 5xx and
  double bookings (any two live bookings of the doctor that overlap);
- and, uncontended, a booking request against the raw DynamoDB calls it makes, replayed
  with plain boto3 on the same table (the transaction replayed on fresh keys).

Writes docs/benchmarks.md between the BOOKING markers. ``python -m bench.booking``.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS, ATTEMPTS, SERVERS = 50, 10, 4


def http(method: str, url: str, body: dict | None = None, token: str | None = None,
         headers: dict | None = None) -> tuple[int, dict, float]:
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            payload, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    elapsed = time.perf_counter() - t
    return status, (json.loads(payload) if payload else {}), elapsed


def environment(endpoint: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"STAGE": "test", "TABLE_NAME": "bench-booking", "DYNAMODB_ENDPOINT": endpoint,
            "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "SMS_GATEWAY": "console", "EMAIL_GATEWAY": "console",
            "MASTER_KEY": secrets.token_hex(32), "TOKEN_SIGNING_KEY_PEM": pem, "LOG_LEVEL": "WARNING"}


def seed_patients(n: int) -> list[str]:
    """Patients with live sessions, written through the identity store and service (no SMS round trips)."""
    from chalicelib.core import clock, db
    from chalicelib.identity import store
    from chalicelib.bootstrap import identity as service
    from local.seed import _user

    svc = service()
    now = clock.epoch()
    tokens = []
    for i in range(n):
        user = _user({"phone": f"+7915{i:07d}", "password": "bench password", "first_name": "P", "last_name": str(i),
                      "role": "patient"}, now, None)
        session, refresh = svc._new_session(user, None, now, "sms")
        ops = [*store.put_user_with_phone_ops(user), store.put_session_op(session)]
        db.Tx().extend(zip(("phone", "user", "session"), ops, strict=True)).commit()
        tokens.append(svc._token_pair(session, refresh, now).access_token)
    return tokens


def start_servers(env: dict[str, str]) -> tuple[list[subprocess.Popen], list[str]]:
    from local.dynamodb_local import free_port

    procs, urls = [], []
    for _ in range(SERVERS):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "local.serve", "--port", str(port), "--stage", "bench"],
                                      cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except Exception:
                time.sleep(0.25)
    return procs, urls


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=10)


def free_slots(url: str, ids: dict, service_id: str, days: int = 13) -> list[str]:
    from datetime import date, timedelta

    lo = date.today() + timedelta(days=1)
    q = (f"{url}/catalog/doctors/{ids['doctor_id']}/slots?clinic_id={ids['clinic_id']}&service_id={service_id}"
         f"&date_from={lo.isoformat()}&date_to={(lo + timedelta(days=days)).isoformat()}")
    status, body, _ = http("GET", q)
    assert status == 200, body
    return [s["start"] for s in body["items"]]


def load_phase(urls: list[str], ids: dict, service_id: str, tokens: list[str]) -> dict:
    slots = free_slots(urls[0], ids, service_id)
    rng = random.Random(7)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(i: int) -> None:
        url = urls[i % len(urls)]
        for _ in range(ATTEMPTS):
            start = rng.choice(slots)
            status, _, elapsed = http("POST", url + "/bookings", {
                "clinic_id": ids["clinic_id"], "service_id": service_id, "doctor_id": ids["doctor_id"],
                "start": start}, token=tokens[i])
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    wall = time.perf_counter() - t
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "wall_s": wall, "throughput_rps": len(latencies) / wall,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "statuses": statuses, "slots_offered": len(slots)}


def double_bookings(ids: dict) -> tuple[int, int]:
    from chalicelib.booking import store

    live = [b for b in store.agenda(ids["doctor_id"], "2000", "2100") if b["status"] in ("held", "confirmed")]
    live.sort(key=lambda b: b["start_utc"])
    clashes = sum(1 for a, b in zip(live, live[1:]) if b["start_utc"] < a["end_utc"])
    return clashes, len(live)


def main() -> int:
    from local import dynamodb_local

    server = dynamodb_local.start()
    procs: list[subprocess.Popen] = []
    try:
        env = environment(server.endpoint)
        os.environ.update(env)
        from chalicelib.core import aws
        from chalicelib.core.table import ensure_table
        from local.seed import seed_once

        ensure_table(aws.client("dynamodb"), env["TABLE_NAME"])
        seeded = seed_once()
        ids = seed_ids(seeded["clinic_id"])
        tokens = seed_patients(CLIENTS + 1)
        procs, urls = start_servers(env)
        load = load_phase(urls, ids, ids["service_id"], tokens[:CLIENTS])
        clashes, live = double_bookings(ids)
        load.update(double_bookings=clashes, live_bookings=live,
                    created=load["statuses"].get(201, 0), server_errors=sum(v for k, v in load["statuses"].items()
                                                                             if k >= 500))
        raw = raw_compare(urls[0], ids, tokens[CLIENTS])
        print(json.dumps({"load": load, "raw": raw}, indent=1))
        write_doc(load, raw)
        return 0 if load["server_errors"] == 0 and clashes == 0 and load["created"] == live else 1
    finally:
        stop(procs)
        server.stop()


def seed_ids(clinic_id: str) -> dict:
    from chalicelib.clinics import store

    doctors, _ = store.children(clinic_id, "DOCTOR#")
    services, _ = store.children(clinic_id, "SERVICE#")
    consult = [s for s in services if s["modality"] == "in_person" and not s.get("resource_kinds")][0]
    return {"clinic_id": clinic_id, "doctor_id": doctors[0]["doctor_id"], "service_id": consult["service_id"]}


def raw_compare(url: str, ids: dict, token: str) -> dict:
    """A booking over HTTP (uncontended) against the raw DynamoDB calls it makes."""
    from chalicelib.bootstrap import booking as service
    from chalicelib.booking import models as bm
    from chalicelib.core import aws, clock
    from chalicelib.core.ids import new_id
    from chalicelib.core.tokens import verify
    from chalicelib.core.web import Caller

    slots = free_slots(url, ids, ids["service_id"], days=30)
    req_t = []
    for start in slots[:25]:
        status, body, elapsed = http("POST", url + "/bookings", {
            "clinic_id": ids["clinic_id"], "service_id": ids["service_id"], "doctor_id": ids["doctor_id"],
            "start": start}, token=token)
        assert status == 201, body
        req_t.append(elapsed)
    claims = verify(token, clock.epoch())
    caller = Caller(claims["sub"], "patient", claims["sid"], "sms")
    recorded: list[tuple[str, dict]] = []

    def record(model=None, params=None, **_):
        recorded.append((model.name, params))

    aws.add_hook("provide-client-params.dynamodb", record)
    service().book(caller, bm.BookingIn(clinic_id=ids["clinic_id"], service_id=ids["service_id"],
                                        doctor_id=ids["doctor_id"], start=slots[25]), None)
    aws.remove_hook("provide-client-params.dynamodb", record)
    ddb = aws.client("dynamodb")
    snake = {"GetItem": "get_item", "Query": "query", "BatchGetItem": "batch_get_item",
             "TransactWriteItems": "transact_write_items"}

    def fresh(params: dict) -> dict:
        """The same transaction on keys nobody holds (so it succeeds again and again)."""
        tag = new_id()
        out = json.loads(json.dumps(params))
        out.pop("ClientRequestToken", None)  # botocore adds one per call; a replay needs its own
        for item in out["TransactItems"]:
            op = next(iter(item.values()))
            target = op.get("Item") or op.get("Key")
            target["PK"]["S"] = target["PK"]["S"] + "#bench" + tag
        return out

    raw_t = []
    for _ in range(25):
        t = time.perf_counter()
        ddb.get_item(TableName=os.environ["TABLE_NAME"], Key={"PK": {"S": f"SESSION#{claims['sid']}"},
                                                              "SK": {"S": "SESSION"}}, ConsistentRead=True)
        for name, params in recorded:
            getattr(ddb, snake[name])(**(fresh(params) if name == "TransactWriteItems" else params))
        raw_t.append(time.perf_counter() - t)
    req, raw = statistics.median(req_t) * 1000, statistics.median(raw_t) * 1000
    return {"runs": len(req_t), "calls": ["GetItem (authorizer)"] + [n for n, _ in recorded],
            "request_ms": req, "raw_ms": raw, "ratio": req / raw}


def write_doc(load: dict, raw: dict) -> None:
    text = f"""<!-- BOOKING:START (written by `python -m bench.booking`; do not edit by hand) -->
Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, DynamoDB Local,
{SERVERS} local server processes (one request at a time each, as {SERVERS} Lambda containers).

### {CLIENTS} concurrent patients, {ATTEMPTS} booking attempts each, {load['slots_offered']} slots on offer

| what | value |
|---|---|
| requests | {load['requests']} in {load['wall_s']:.1f} s |
| throughput | {load['throughput_rps']:.1f} requests/s |
| latency p50 / p99 | {load['p50_ms']:.0f} ms / {load['p99_ms']:.0f} ms |
| statuses | {', '.join(f'{k}: {v}' for k, v in sorted(load['statuses'].items()))} |
| bookings created (201) / live bookings found | {load['created']} / {load['live_bookings']} |
| double bookings | **{load['double_bookings']}** |
| 5xx | **{load['server_errors']}** |

### One booking against the raw DynamoDB calls it makes (uncontended, median of {raw['runs']})

Calls: {', '.join(raw['calls'])}.

| what | median |
|---|---|
| `POST /bookings` over HTTP | {raw['request_ms']:.1f} ms |
| the same calls replayed with plain boto3 | {raw['raw_ms']:.1f} ms |
| **ratio** | **{raw['ratio']:.2f}** |
<!-- BOOKING:END -->"""
    from bench.doc import write_section

    write_section("BOOKING:START", "BOOKING:END", text, heading="Booking")


if __name__ == "__main__":
    sys.exit(main())
