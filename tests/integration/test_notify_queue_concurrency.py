"""The notifications queue's consumer under real concurrency on DynamoDB Local: the same batch handed to four
consumers at once (SQS delivers at least once; two Lambda containers can hold the same records) pushes each
message once, and the claim that lost answers 'duplicate', never a failure that would retry it."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib import bootstrap
from chalicelib.notify.jobs import consume
from local.scheduler import sqs_event
from tests.conftest import body, jpost
from tests.unit.notify_setup import fcm, fcm_token, person, register  # noqa: F401
from tests.unit.test_notify_queue import queue, receive  # noqa: F401


def test_four_consumers_on_the_same_batch_push_each_message_once(client, outbox, fcm, queue):  # noqa: F811
    people = []
    for i in range(5):
        p = person(client, outbox, f"+7916333{i:04d}")
        p["device"] = fcm_token()
        register(client, p["token"], p["device"])
        people.append(p)
    svc = bootstrap.notify()
    for p in people:
        for n in range(2):
            assert svc.send(p["user_id"], "recall", f"recall:{p['user_id']}:{n}", link="book") == "queued"
    messages = receive(queue["url"])
    assert len(messages) == 10
    event = sqs_event("arn:aws:sqs:eu-central-1:123456789012:q", messages)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result() for f in [pool.submit(consume, svc, event) for _ in range(4)]]
    assert results == [{"batchItemFailures": []}] * 4
    assert sorted(fcm.tokens_sent()) == sorted(p["device"] for p in people for _ in range(2))
    for p in people:
        inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
        assert len(inbox["items"]) == 2 and inbox["unread"] == 2
