"""One reminder run over 1,000 due visits, among 10,000 future ones, through the notifications queue.

Against DynamoDB Local (started here on 127.0.0.1, stopped by pid) and SQS on moto in this process; push
goes to a gateway that answers "sent" at once (FCM's own time is not ours to measure). Each round:

- **app**: ``send_due_reminders`` (the job: due reminders, their bookings, each message accepted and queued
  ten at a time, the reminders deleted), then ``deliver_notifications``' ``consume`` over every batch of ten
  on the queue (the claim, preferences, devices and their sessions, delivered). Receiving and deleting the
  batches is the event source mapping's work, outside the timing.
- **raw**: the same DynamoDB and SQS calls the app path made in that round (recorded with a botocore hook),
  replayed with a plain boto3 client in the same order, without their conditions (the I/O, not the rules).

Reported: messages per second of each, DynamoDB calls per message, and the ratio app / raw (medians of
``ROUNDS`` rounds, the two measured side by side in each). Writes docs/benchmarks.md between the NOTIFY markers.
``python -m bench.notify``.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

DUE = int(os.environ.get("BENCH_NOTIFY_DUE", "1000"))
FUTURE = int(os.environ.get("BENCH_NOTIFY_FUTURE", "10000"))
ROUNDS = int(os.environ.get("BENCH_NOTIFY_ROUNDS", "3"))
PATIENTS = 250
TABLE = "bench-notify"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)  # 11:00 in Berlin: outside quiet hours
ZONE = "Europe/Berlin"


class SentPush:
    """FCM that answers every token at once."""

    def send(self, tokens: list[str], title: str, text: str, data: dict[str, str]) -> list[Any]:
        from chalicelib.notify.push import PushResult

        return [PushResult("sent") for _ in tokens]


def environment(endpoint: str) -> dict[str, str]:
    return {"STAGE": "test", "TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": endpoint, "AWS_REGION": "eu-central-1",
            "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "SMS_GATEWAY": "console", "EMAIL_GATEWAY": "console",
            "LOG_LEVEL": "WARNING"}


def put_all(items: list[dict[str, Any]]) -> None:
    from chalicelib.core import db

    for at in range(0, len(items), 25):
        request = {db.table_name(): [{"PutRequest": {"Item": db.to_item(i)}} for i in items[at:at + 25]]}
        while request:
            request = db.ddb().batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def patients() -> list[str]:
    """Patients with a profile, a live session and one device each (its token owned by them)."""
    from chalicelib.core import clock, db
    from chalicelib.core.ids import new_id
    from chalicelib.notify import store

    items, ids = [], []
    for i in range(PATIENTS):
        uid, sid, token = new_id(), new_id(), f"bench{i}:APA91b{'x' * 120}"
        did = store.device_id(token)
        ids.append(uid)
        items += [
            {"PK": db.key("USER", uid), "SK": "PROFILE", "type": "user", "user_id": uid, "phone": f"+7916444{i:04d}",
             "language": "ru" if i % 2 else "en"},
            {"PK": db.key("SESSION", sid), "SK": "SESSION", "type": "session", "session_id": sid, "user_id": uid},
            {"PK": db.key("USER", uid), "SK": db.key("DEVICE", did), "type": "device", "device_id": did,
             "user_id": uid, "token": token, "platform": "android", "app_version": "3.2.1", "language": "en",
             "time_zone": ZONE, "session_id": sid, "registered_at": clock.iso(NOW - timedelta(days=3)),
             "refreshed_at": clock.iso(NOW - timedelta(days=1)), "expires_at": int(NOW.timestamp()) + 86400 * 200},
            {"PK": db.key("FCMTOKEN", did), "SK": "TOKEN", "type": "fcm_token", "user_id": uid},
        ]
    put_all(items)
    return ids


def visits(people: list[str], due: int, future: int) -> None:
    """``due`` visits whose 2-hour reminder is due in the last 50 minutes, ``future`` whose reminders are days
    ahead (both offsets), each with its booking."""
    from chalicelib.booking import store as bstore
    from chalicelib.core import clock, db
    from chalicelib.core.ids import new_id
    from chalicelib.notify import reminders

    items = []
    for i in range(due + future):
        bid = new_id()
        start = NOW + timedelta(hours=2) - timedelta(minutes=i % 50) if i < due else \
            NOW + timedelta(days=2) + timedelta(minutes=7 * i)
        visit = {"booking_id": bid, "patient_id": people[i % len(people)], "start_utc": clock.iso(start),
                 "time_zone": ZONE, "status": "confirmed"}
        for hours in ((2,) if i < due else (24, 2)):
            at = reminders.due_at(visit["start_utc"], ZONE, hours)
            items.append({"PK": db.key("REMINDER", bid), "SK": f"H#{hours}", "type": "reminder", **visit,
                          "hours": hours, "due_at": clock.iso(at), "GSI2PK": reminders.bucket(at),
                          "GSI2SK": f"{clock.iso(at)}#{bid}#{hours}"})
        items.append({"PK": bstore.booking_pk(bid), "SK": "BOOKING", "type": "booking", **visit})
    put_all(items)


_TOKEN = re.compile(r"[:#][A-Za-z0-9_]+")


def unconditioned(params: dict[str, Any]) -> dict[str, Any]:
    """A call's parameters without its condition, and without the names and values only the condition used."""
    p = {k: v for k, v in params.items() if k != "ConditionExpression"}
    used = set()
    for k in ("UpdateExpression", "KeyConditionExpression", "FilterExpression", "ProjectionExpression"):
        used |= set(_TOKEN.findall(p.get(k) or ""))
    for k in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        if k in p:
            kept = {n: v for n, v in p[k].items() if n in used}
            if kept:
                p[k] = kept
            else:
                del p[k]
    return p


def replayable(op: str, params: dict[str, Any]) -> dict[str, Any]:
    if op == "TransactWriteItems":
        items = []
        for item in params["TransactItems"]:
            (kind, body), = item.items()
            if kind != "ConditionCheck":
                items.append({kind: unconditioned(body)})
        return {**params, "TransactItems": items}
    return unconditioned(params)


def main() -> int:
    from moto import mock_aws

    from local import dynamodb_local

    server = dynamodb_local.start()
    try:
        os.environ.update(environment(server.endpoint))
        with mock_aws(config={"core": {"mock_credentials": True,
                                       "passthrough": {"urls": [re.escape(server.endpoint) + ".*"]}}}):
            return run(server.endpoint)
    finally:
        server.stop()


def run(endpoint: str) -> int:
    import boto3
    from botocore import xform_name

    from chalicelib import bootstrap
    from chalicelib.core import aws, clock
    from chalicelib.core.table import ensure_table
    from chalicelib.notify.jobs import NOTIFICATIONS_QUEUE, consume
    from local.scheduler import sqs_event

    bootstrap.reset()
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    os.environ["NOTIFICATIONS_QUEUE_URL"] = url
    bootstrap.reset()
    bootstrap.provide("push", SentPush())
    ensure_table(aws.client("dynamodb"), TABLE)
    clock.set_clock(clock.FixedClock(NOW))
    people = patients()
    visits(people, 0, FUTURE)
    raw_ddb = boto3.client("dynamodb", region_name="eu-central-1", endpoint_url=endpoint)
    raw_sqs = boto3.client("sqs", region_name="eu-central-1")
    raw_url = raw_sqs.create_queue(QueueName=f"{NOTIFICATIONS_QUEUE}-raw")["QueueUrl"]
    recorded: list[tuple[str, str, dict[str, Any]]] = []
    recording = [False]

    def record(service: str):
        def hook(model=None, params=None, **_: Any) -> None:
            if recording[0]:
                recorded.append((service, model.name, dict(params)))
        return hook

    aws.add_hook("provide-client-params.dynamodb", record("dynamodb"))
    aws.add_hook("provide-client-params.sqs", record("sqs"))
    rounds = []
    for _ in range(ROUNDS):
        visits(people, DUE, 0)
        svc = bootstrap.notify()
        def replay(calls: list[tuple[str, str, dict[str, Any]]]) -> float:
            t = time.perf_counter()
            for service, op, params in calls:
                if service == "dynamodb":
                    getattr(raw_ddb, xform_name(op))(**replayable(op, params))
                else:
                    getattr(raw_sqs, xform_name(op))(**{**params, "QueueUrl": raw_url})
            return time.perf_counter() - t

        recorded.clear()
        recording[0] = True
        t = time.perf_counter()
        result = svc.send_due_reminders(NOW)
        job_s = time.perf_counter() - t
        recording[0] = False
        job_calls = list(recorded)
        raw_job_s = replay(job_calls)  # right after: the machine as it was for the job
        raw_sqs.purge_queue(QueueUrl=raw_url)  # moto's SendMessage slows with the queue's length: empty it
        consumer_s = raw_consumer_s = 0.0
        delivered, consumer_calls = 0, 0
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])  # the mapping's
            if not got:
                break
            recorded.clear()
            recording[0] = True
            t = time.perf_counter()
            answer = consume(svc, sqs_event("arn:aws:sqs:eu-central-1:123456789012:n", got))
            consumer_s += time.perf_counter() - t
            recording[0] = False
            assert answer == {"batchItemFailures": []}, answer
            consumer_calls += sum(1 for r in recorded if r[0] == "dynamodb")
            raw_consumer_s += replay(list(recorded))  # each batch and its raw calls side by side
            delivered += len(got)
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        assert result["sent"] == DUE and delivered == DUE, (result, delivered)
        raw_s = raw_job_s + raw_consumer_s
        ddb_calls = [r for r in job_calls if r[0] == "dynamodb"]
        app_s = job_s + consumer_s
        ops: dict[str, int] = {}
        for _, op, _p in job_calls:
            ops[op] = ops.get(op, 0) + 1
        rounds.append({"job_s": job_s, "raw_job_s": raw_job_s, "consumer_s": consumer_s,
                       "raw_consumer_s": raw_consumer_s, "app_s": app_s, "raw_s": raw_s,
                       "app_per_s": DUE / app_s, "raw_per_s": DUE / raw_s, "ratio": app_s / raw_s,
                       "job_ratio": job_s / raw_job_s, "consumer_ratio": consumer_s / raw_consumer_s,
                       "job_ddb_per_message": len(ddb_calls) / DUE, "consumer_ddb_per_message": consumer_calls / DUE,
                       "ddb_per_message": (len(ddb_calls) + consumer_calls) / DUE, "job_calls": ops})
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k != "job_calls"}
    out = {"due": DUE, "future": FUTURE, "rounds": rounds, "median": med}
    print(json.dumps(out, indent=1))
    write_doc(rounds, med)
    clock.set_clock(clock.SystemClock())
    return 0


def write_doc(rounds: list[dict[str, Any]], med: dict[str, float]) -> None:
    ms_per_call = 1000 * med["raw_s"] / (med["ddb_per_message"] * DUE)
    spread = ", ".join(f"{r['ratio']:.2f}x" for r in rounds)
    calls = ", ".join(f"{op} {n}" for op, n in sorted(rounds[-1]["job_calls"].items()))
    m = med
    rows = "\n".join([
        f"| the job ({m['job_ddb_per_message']:.2f} DynamoDB calls a message) | {m['job_s']:.2f} s "
        f"| {m['raw_job_s']:.2f} s | {m['job_ratio']:.2f}x |",
        f"| the consumer ({m['consumer_ddb_per_message']:.2f} calls a message) | {m['consumer_s']:.2f} s "
        f"| {m['raw_consumer_s']:.2f} s | {m['consumer_ratio']:.2f}x |",
        f"| job + consumer | {m['app_s']:.2f} s: **{m['app_per_s']:.0f} messages/s** "
        f"| {m['raw_s']:.2f} s: {m['raw_per_s']:.0f} messages/s | **{m['ratio']:.2f}x** |"])
    text = f"""<!-- NOTIFY:BEGIN (written by `python -m bench.notify`; do not edit by hand) -->
One reminder run: {DUE:,} due visits among {FUTURE:,} future ones (their reminders in the same sparse index,
later hours), {PATIENTS} patients with a device each; DynamoDB Local and SQS on moto, one process, push
answered at once. The app path is the job (`send_due_reminders`: accept each message, queue ten at a time,
delete the reminder) and the queue's consumer (`consume` over each batch of ten: claim, preferences, devices,
sessions, delivered); the raw path replays the same DynamoDB and SQS calls with plain boto3, without their
conditions: the job's right after the job, each consumer batch's right after that batch. Medians of
{ROUNDS} rounds. The machine is shared (2 cores, DynamoDB Local's JVM on them): single rounds swing by
tens of percent, so read the ratio as "about", not to the second decimal.

| path | app | raw calls | app / raw |
|---|---|---|---|
{rows}

DynamoDB calls per message: **{med['ddb_per_message']:.2f}** (the job: send record, profile, the create
transaction, the reminder's delete; the consumer: claim, preferences, devices, one BatchGetItem of their
sessions and token owners, delivered; plus per run the due hours' queries and one BatchGetItem of bookings
per hundred). The job's calls in the last round: {calls}.

Ratio app / raw (medians of the rounds): **{med['ratio']:.2f}x** (rounds: {spread}). DynamoDB Local
answered a raw call in about {ms_per_call:.1f} ms here, one at a time, so the calls are nearly all of the
time and the app's own Python (rendering the texts in the clinic's zone, building and parsing items,
Powertools' batch processing) is within the machine's noise; the number to keep is the calls per message.
Messages per second are bound by that latency; in AWS the consumer runs `notify_consumer_concurrency`
batches at once.
<!-- NOTIFY:END -->"""
    from bench.doc import write_section

    write_section("NOTIFY:BEGIN", "NOTIFY:END", text, heading="Notifications: one reminder run")


if __name__ == "__main__":
    sys.exit(main())
