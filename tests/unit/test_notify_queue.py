"""The notifications queue and its consumer (SQS on moto, firebase-admin against the fake FCM server).

A message is accepted (inbox and send record in one transaction) and put on the queue; the consumer
delivers each record on its own and answers a batch with the records that failed, only those. A batch fed
twice sends each message once; FCM down for a whole batch loses nothing: every message is retried with a
growing delay, dead-lettered after the queue's last receive, and the inbox has had it all along.
"""
from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from chalicelib.core import aws
from chalicelib.notify import delivery
from chalicelib.notify.jobs import NOTIFICATIONS_QUEUE, consume
from local.scheduler import sqs_event
from tests.conftest import CallCounter, body, jpost, reset_process_state
from tests.unit.notify_setup import fcm_token, person, register

MAX_RECEIVES = 5


@pytest.fixture
def queue(fcm, monkeypatch):
    """The notifications queue with its dead-letter queue after five receives, as the stack makes them."""
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{NOTIFICATIONS_QUEUE}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    url = sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE,
                           Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})["QueueUrl"]
    monkeypatch.setenv("NOTIFICATIONS_QUEUE_URL", url)
    reset_process_state()
    return {"url": url, "dlq": dlq}


def receive(url: str, n: int = 10) -> list[dict]:
    got = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=n,
                                            AttributeNames=["ApproximateReceiveCount"])
    return got.get("Messages", [])


def waiting(url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def sqs_calls_during(job):
    """What ``job()`` answers and the SQS calls it made."""
    calls = CallCounter()
    aws.add_hook("before-call.sqs", calls)
    try:
        return job(), calls
    finally:
        aws.remove_hook("before-call.sqs", calls)


def queues_25_in_three_batches(job, still_due, fcm, queue):
    """A job over 25 due messages accepts each and queues them ten at a time, leaves nothing due, pushes nothing
    itself; the consumer (the local scheduler) then pushes each once. The scheduler, for more."""
    from app import app
    from local.scheduler import Scheduler

    run, calls = sqs_calls_during(job)
    assert run == {"due": 25, "sent": 25, "skipped": 0, "failed": 0}
    assert calls.calls == ["SendMessageBatch"] * 3 and fcm.sent == []
    assert still_due() == []
    scheduler = Scheduler(app, sqs_client=aws.client("sqs"), report=lambda _: None)
    for _ in range(4):
        scheduler.tick()
    assert len(fcm.sent) == 25 and waiting(queue["url"]) == 0
    return scheduler


def patients_with_devices(client, outbox, n: int) -> list[dict]:
    out = []
    for i in range(n):
        p = person(client, outbox, f"+7916222{i:04d}")
        p["device"] = fcm_token()
        register(client, p["token"], p["device"])
        out.append(p)
    return out


def test_the_backoff_grows_and_takes_fcms_retry_after_when_longer():
    assert [delivery.backoff_s(n) for n in range(1, 7)] == [60, 120, 240, 480, 900, 900]
    assert delivery.backoff_s(1, retry_after=300) == 300 and delivery.backoff_s(4, retry_after=30) == 480
    assert delivery.backoff_s(1, retry_after=86400) == 900
    for bad in ("", "{", "[]", '{"key": ""}', '{"key": 7}', '{"key": "k", "release": "yes"}'):
        with pytest.raises(ValueError):
            delivery.parse(bad)
    assert delivery.parse(delivery.body("k:1", True)) == ("k:1", True)


def test_a_poisoned_message_fails_alone_and_the_rest_are_delivered(client, outbox, fcm, queue):
    people = patients_with_devices(client, outbox, 3)
    svc = bootstrap.notify()
    keys = []
    for p in people:
        for n in range(3):
            keys.append(f"recall:{p['user_id']}:{n}")
            assert svc.send(p["user_id"], "recall", keys[-1], link="book") == "queued"
    # accepted: in the inbox at once, pushed by nobody yet
    assert fcm.sent == []
    assert body(jpost(client, "/me/inbox", token=people[0]["token"], method="get"))["unread"] == 3
    aws.client("sqs").send_message(QueueUrl=queue["url"], MessageBody='{"key": ')  # cut off: no notification
    messages = receive(queue["url"])
    assert len(messages) == 10
    poisoned = next(m["MessageId"] for m in messages if m["Body"] == '{"key": ')

    calls = CallCounter()
    aws.add_hook("before-call.dynamodb", calls)
    try:
        result = consume(svc, sqs_event("arn:aws:sqs:eu-central-1:123456789012:q", messages))
    finally:
        aws.remove_hook("before-call.dynamodb", calls)
    assert result == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    # every real message pushed once, to its own person's device
    assert sorted(fcm.tokens_sent()) == sorted(p["device"] for p in people for _ in range(3))
    assert len(fcm.sent) == 9
    # the consumer's budget: per message the claim, the preferences, the devices, their sessions and token
    # owners (one BatchGetItem) and delivered: 5 calls; the profile is read only when an SMS needs its phone
    assert len(calls.calls) == 9 * 5, sorted(set(calls.calls))
    assert "GetItem" in calls.calls and calls.calls.count("UpdateItem") == 9 * 2


def test_the_same_batch_fed_twice_sends_each_message_once(client, outbox, fcm, queue):
    people = patients_with_devices(client, outbox, 2)
    svc = bootstrap.notify()
    for p in people:
        for n in range(4):
            svc.send(p["user_id"], "feedback_request", f"fb:{p['user_id']}:{n}", link=f"feedback/{n}")
    # a job that ran twice puts every message on the queue again (a second SQS message, the same key)
    for p in people:
        for n in range(4):
            svc.send(p["user_id"], "feedback_request", f"fb:{p['user_id']}:{n}", link=f"feedback/{n}")
    messages = receive(queue["url"]) + receive(queue["url"])
    assert len(messages) == 16 and len({m["MessageId"] for m in messages}) == 16
    event = sqs_event("arn:aws:sqs:eu-central-1:123456789012:q", messages[:10])
    rest = sqs_event("arn:aws:sqs:eu-central-1:123456789012:q", messages[10:])
    assert consume(svc, event) == {"batchItemFailures": []}
    assert consume(svc, event) == {"batchItemFailures": []}  # SQS delivered the batch again
    assert consume(svc, rest) == {"batchItemFailures": []}
    assert len(fcm.sent) == 8
    for p in people:
        inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
        assert len(inbox["items"]) == 4 and inbox["unread"] == 4


def test_fcm_down_for_a_whole_batch_loses_nothing(client, outbox, fcm, queue, monkeypatch):
    """Recalls (no SMS fallback) while FCM answers 503 with Retry-After 30: each message is retried after 60,
    120, 240, 480 s (the consumer sets its visibility), dead-lettered after the fifth receive, and in the
    inbox from the start; FCM back, a redrive pushes each once."""
    from app import app
    from local.scheduler import Scheduler

    people = patients_with_devices(client, outbox, 4)
    svc = bootstrap.notify()
    for p in people:
        for n in range(2):
            svc.send(p["user_id"], "recall", f"recall:{p['user_id']}:{n}", link="book")
    sms_before = sum(len(outbox.to(p["phone"])) for p in people)
    fcm.down("UNAVAILABLE")
    delays: list[int] = []
    real_retry_later = svc.queue.retry_later

    def retry_now(receipt_handle: str, seconds: int) -> None:
        delays.append(seconds)  # what Lambda would wait; the test makes the message visible at once instead
        real_retry_later(receipt_handle, 0)

    monkeypatch.setattr(svc.queue, "retry_later", retry_now)
    scheduler = Scheduler(app, sqs_client=aws.client("sqs"), report=lambda _: None)
    for _ in range(MAX_RECEIVES + 2):
        scheduler.tick()
    assert sorted(delays) == sorted([60, 120, 240, 480, 900] * 8)
    assert len(fcm.refused) == 8 * MAX_RECEIVES and fcm.sent == []
    assert waiting(queue["url"]) == 0 and len(receive(queue["dlq"])) == 8
    assert sum(len(outbox.to(p["phone"])) for p in people) == sms_before  # a recall is never an SMS
    for p in people:
        inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
        assert [i["kind"] for i in inbox["items"]] == ["recall", "recall"] and inbox["unread"] == 2

    # FCM is back; an operator moves the dead letters back to the queue (SQS redrive); each is pushed once
    fcm.down(None)
    sqs = aws.client("sqs")
    moved = 0
    while moved < 8:
        batch = sqs.receive_message(QueueUrl=queue["dlq"], MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", [])
        for m in batch:
            sqs.send_message(QueueUrl=queue["url"], MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=queue["dlq"], ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    for _ in range(2):
        scheduler.tick()
    assert sorted(fcm.tokens_sent()) == sorted(p["device"] for p in people for _ in range(2))
    assert waiting(queue["url"]) == 0


def test_the_reminder_job_queues_in_batches_and_the_consumer_delivers(client, outbox, fcm, queue, fixed_clock):
    """25 due reminders: the job accepts each and queues them ten at a time (SendMessageBatch), and deletes a
    reminder only once its message is on the queue; the consumer pushes each once."""
    from datetime import timedelta

    from chalicelib.booking import store as bstore
    from chalicelib.core import clock, db
    from chalicelib.core.ids import new_id
    from chalicelib.notify import reminders

    (p,) = patients_with_devices(client, outbox, 1)
    now = clock.now()
    for i in range(25):
        bid = new_id()
        start = clock.iso(now + timedelta(hours=2) - timedelta(minutes=i))
        visit = {"booking_id": bid, "patient_id": p["user_id"], "start_utc": start, "time_zone": "Europe/Berlin",
                 "status": "confirmed"}
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(
            {"PK": bstore.booking_pk(bid), "SK": "BOOKING", "type": "booking", **visit}))
        at = reminders.due_at(start, "Europe/Berlin", 2)
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(
            {"PK": db.key("REMINDER", bid), "SK": "H#2", "type": "reminder", **visit, "hours": 2,
             "due_at": clock.iso(at), "GSI2PK": reminders.bucket(at), "GSI2SK": f"{clock.iso(at)}#{bid}#2"}))
    queues_25_in_three_batches(lambda: bootstrap.notify().send_due_reminders(now), lambda: reminders.due(now),
                               fcm, queue)
    assert {m["notification"]["title"] for _, m in fcm.sent} == {"Visit reminder"}


def test_the_care_and_held_jobs_queue_in_batches_and_the_consumer_delivers(client, outbox, fcm, queue, fixed_clock):
    """25 due follow-ups and then 25 held messages: each job queues ten at a time (SendMessageBatch), a
    follow-up's due item goes only once its message is on the queue; the consumer pushes each message once."""
    from datetime import timedelta

    from chalicelib.core import clock
    from chalicelib.core.ids import new_id
    from chalicelib.notify import care

    (p,) = patients_with_devices(client, outbox, 1)
    now = clock.now()
    for i in range(25):
        visit = {"booking_id": new_id(), "patient_id": p["user_id"], "start_utc": clock.iso(now - timedelta(days=30)),
                 "time_zone": "Europe/Berlin"}
        care.put("follow_up", visit, now - timedelta(minutes=i))
    scheduler = queues_25_in_three_batches(lambda: bootstrap.notify().send_due_care(now), lambda: care.due(now),
                                           fcm, queue)

    # quiet hours around now (Reykjavik: UTC all year): 25 recalls accepted now are held until they end, then released

    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:00"),
             "end": (now + timedelta(hours=2)).strftime("%H:00")}
    r = jpost(client, "/me/notification-settings", {"quiet_hours": quiet, "time_zone": "Atlantic/Reykjavik"},
              token=p["token"], method="put")
    assert r.status_code == 200, r.body
    n = bootstrap.notify()
    for i in range(25):
        n.send(p["user_id"], "recall", f"held-test:{i}", link=f"recall/{new_id()}")
    for _ in range(4):
        scheduler.tick()
    assert len(fcm.sent) == 25  # held, not pushed in the night
    fixed_clock.advance(hours=3)
    now = clock.now()
    released, sqs_calls = sqs_calls_during(lambda: n.release_held(now))
    assert released == {"sent": 25, "failed": 0, "lapsed": 0}, released
    assert sqs_calls.calls == ["SendMessageBatch"] * 3, sqs_calls.calls
    for _ in range(4):
        scheduler.tick()
    assert len(fcm.sent) == 50 and waiting(queue["url"]) == 0
