"""Fire an app's scheduled functions and feed its SQS consumers, as Lambda would.

``chalice local`` serves HTTP only. The local runner uses this to call every
``@app.schedule`` handler when its rate or cron expression comes due and to
hand messages waiting on a (moto) SQS queue to the ``@app.on_sqs_message``
consumer, deleting those it handled: all of them when it returns without raising, less the
``batchItemFailures`` it answers (as an event source mapping with ReportBatchItemFailures does).
What is not deleted comes back when its visibility timeout ends (the queue's redrive policy then
dead-letters it after its last receive).
"""
from __future__ import annotations

import importlib
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def _expr(expression: Any) -> str:
    return expression if isinstance(expression, str) else expression.to_string()


_NAMES = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_NAMES.update({name: i + 1 for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                                                      "OCT", "NOV", "DEC"))})


def _numbers(spec: str) -> str:
    for name, number in _NAMES.items():
        spec = spec.upper().replace(name, str(number))
    return spec


def _field_matches(spec: str, value: int, low: int) -> bool:
    spec = _numbers(spec)
    if spec in ("*", "?"):
        return True
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, 10 ** 6
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(part)
            if step != 1:
                end = 10 ** 6
        if start <= value <= end and (value - start) % step == 0:
            return True
    return False


def next_fire(expression: Any, after: datetime) -> datetime:
    """The next UTC moment strictly after ``after`` when a schedule expression fires."""
    text = _expr(expression).strip()
    if text.startswith("rate(") and text.endswith(")"):
        amount, unit = text[5:-1].split()
        return after + timedelta(seconds=int(amount) * _UNITS[unit.lower()])
    if text.startswith("cron(") and text.endswith(")"):
        minute, hour, dom, month, dow, _year = text[5:-1].split()
        t = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
        for _ in range(366 * 24 * 60):
            # EventBridge day-of-week: 1 = Sunday ... 7 = Saturday
            eb_dow = (t.isoweekday() % 7) + 1
            if (_field_matches(minute, t.minute, 0) and _field_matches(hour, t.hour, 0)
                    and _field_matches(dom, t.day, 1) and _field_matches(month, t.month, 1)
                    and _field_matches(dow, eb_dow, 1)):
                return t
            t += timedelta(minutes=1)
        raise ValueError(f"cron expression never fires: {text}")
    raise ValueError(f"unsupported schedule expression: {text}")


def resolve(handler_string: str) -> Callable[..., Any]:
    module, _, attr = handler_string.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def scheduled_event(name: str, when: datetime) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "eu-central-1",
        "resources": [f"arn:aws:events:eu-central-1:123456789012:rule/{name}"], "detail": {},
    }


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {"ApproximateReceiveCount": (m.get("Attributes") or {}).get("ApproximateReceiveCount", "1")},
        "messageAttributes": {},
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": "eu-central-1",
    } for m in messages]}


class LambdaContext:
    function_name = "local"
    memory_limit_in_mb = 512
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Scheduler:
    app: Any
    sqs_client: Optional[Any] = None
    # Stands in for the table's stream: called every tick, it runs the consumers of new events
    # (in AWS the stream invokes ``event_consumer`` within a second of the write).
    events: Optional[Callable[[], Any]] = None
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    report: Callable[[str], None] = print
    _due: dict[str, datetime] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sources(self, kind: str) -> list[Any]:
        return [s for s in self.app.event_sources if type(s).__name__ == kind]

    def tick(self) -> int:
        """Run whatever is due now. Returns how many handler calls were made."""
        calls = 0
        now = self.now()
        for source in self._sources("ScheduledEventConfig"):
            due = self._due.setdefault(source.name, next_fire(source.schedule_expression, now))
            if now >= due:
                self._due[source.name] = next_fire(source.schedule_expression, now)
                try:
                    resolve(source.handler_string)(scheduled_event(source.name, now), LambdaContext())
                    self.report(f"[scheduler] ran {source.name}")
                except Exception as exc:  # keep the loop alive, as Lambda would retry
                    self.report(f"[scheduler] {source.name} failed: {type(exc).__name__}")
                calls += 1
        if self.sqs_client is not None:
            for source in self._sources("SQSEventConfig"):
                calls += self._feed(source)
        if self.events is not None:
            try:
                result = self.events()
                if getattr(result, "done", 0) or getattr(result, "dead", 0):
                    self.report(f"[events] {result.done} handled, {result.retried} to retry, {result.dead} dead")
            except Exception as exc:
                self.report(f"[events] consumer failed: {type(exc).__name__}; events stay pending")
            calls += 1
        return calls

    def _feed(self, source: Any) -> int:
        try:
            url = self.sqs_client.get_queue_url(QueueName=source.queue)["QueueUrl"]
        except Exception:
            self.sqs_client.create_queue(QueueName=source.queue)
            return 0
        got = self.sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, source.batch_size),
                                              AttributeNames=["ApproximateReceiveCount"])
        messages = got.get("Messages", [])
        if not messages:
            return 0
        arn = f"arn:aws:sqs:eu-central-1:123456789012:{source.queue}"
        try:
            result = resolve(source.handler_string)(sqs_event(arn, messages), LambdaContext())
        except Exception as exc:
            self.report(f"[queue] {source.name} failed: {type(exc).__name__}; messages return to the queue")
            return 1
        failed = {f["itemIdentifier"] for f in (result.get("batchItemFailures") or [])} \
            if isinstance(result, dict) else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs_client.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        if failed:
            self.report(f"[queue] {source.name}: {len(failed)} of {len(messages)} failed; they come back later")
        return 1

    def run_forever(self, interval_s: float = 5.0) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(interval_s)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="local-scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def describe(app: Any) -> list[str]:
    lines = []
    for s in app.event_sources:
        if type(s).__name__ == "ScheduledEventConfig":
            lines.append(f"schedule {s.name}: {_expr(s.schedule_expression)}")
        elif type(s).__name__ == "SQSEventConfig":
            lines.append(f"queue consumer {s.name}: {s.queue}")
    return lines


__all__ = ["Scheduler", "next_fire", "describe"]
