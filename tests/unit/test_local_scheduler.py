"""The local runner fires scheduled functions and feeds queue consumers as Lambda would."""
from datetime import datetime, timezone

import boto3
import pytest
from chalice import Chalice, Cron, Rate
from moto import mock_aws

from local.scheduler import Scheduler, next_fire

T0 = datetime(2026, 11, 24, 6, 0, 30, tzinfo=timezone.utc)  # a Tuesday


@pytest.mark.parametrize("expression,expected", [
    ("rate(1 minute)", datetime(2026, 11, 24, 6, 1, 30, tzinfo=timezone.utc)),
    (Rate(2, unit=Rate.HOURS), datetime(2026, 11, 24, 8, 0, 30, tzinfo=timezone.utc)),
    ("cron(0/15 * * * ? *)", datetime(2026, 11, 24, 6, 15, tzinfo=timezone.utc)),
    ("cron(0 9 ? * MON-FRI *)", datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)),
    ("cron(0 9 ? * SAT *)", datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)),
    (Cron(30, 7, "*", "*", "?", "*"), datetime(2026, 11, 24, 7, 30, tzinfo=timezone.utc)),
    ("cron(0 10 ? * 1 *)", datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)),  # Sunday in EventBridge terms
])
def test_next_fire(expression, expected):
    assert next_fire(expression, T0) == expected


def test_scheduled_functions_fire_when_due_and_queues_are_drained():
    app = Chalice("demo")
    fired, consumed = [], []

    @app.schedule("rate(5 minutes)")
    def every_five(event):
        fired.append(event.detail_type)

    @app.on_sqs_message(queue="demo-queue", batch_size=5)
    def consume(event):
        consumed.extend(record.body for record in event)

    import sys
    import types

    module = types.ModuleType("demo_app")
    module.every_five, module.consume = every_five, consume
    sys.modules["demo_app"] = module
    for source in app.event_sources:
        source.handler_string = f"demo_app.{source.name}"

    now = [T0]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="demo-queue")["QueueUrl"]
        for i in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        scheduler = Scheduler(app, sqs_client=sqs, now=lambda: now[0], report=lambda _: None)
        scheduler.tick()
        assert fired == [] and sorted(consumed) == ["m0", "m1", "m2"]
        now[0] = T0.replace(minute=5, second=31)
        scheduler.tick()
        assert fired == ["Scheduled Event"]
        scheduler.tick()
        assert fired == ["Scheduled Event"]  # not again until the next five minutes
        assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # deleted after success


def test_the_event_consumer_runs_every_tick_and_a_failure_keeps_the_loop_alive():
    from types import SimpleNamespace

    calls, said = [], []

    def consumer():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("table unreachable")
        return SimpleNamespace(done=len(calls), retried=0, dead=0)

    scheduler = Scheduler(Chalice("demo"), events=consumer, now=lambda: T0, report=said.append)
    for _ in range(3):
        scheduler.tick()
    assert len(calls) == 3
    assert said == ["[events] 1 handled, 0 to retry, 0 dead",
                    "[events] consumer failed: RuntimeError; events stay pending",
                    "[events] 3 handled, 0 to retry, 0 dead"]
