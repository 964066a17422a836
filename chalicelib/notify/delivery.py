"""The notifications queue: what was accepted (inbox written, send record pending) waits here for delivery.

``NotifyService.send`` writes the inbox message and the send record in one transaction, then puts the message's
key on this queue; the queue's consumer (``jobs.deliver_notifications``, SQS into a Lambda) pushes or texts it.
A body is ``{"key": <message key>, "release": <quiet hours over>}``: no name, phone, text or token travels
through the queue; the consumer reads the send record by its key.

Retries and the end of them: a message whose delivery failed is reported in the batch response (only that one),
its visibility is set to a growing delay (``backoff_s``; FCM's Retry-After when it is longer), and after the
queue's ``maxReceiveCount`` receives SQS moves it to the dead-letter queue, where an alarm sees it. Its inbox
copy was written before it was ever queued. A message on the queue twice (a job or consumer that ran twice)
is delivered once: the send record is claimed and marked delivered by its key.

``SqsDeliveryQueue`` is the one adapter; without ``notifications_queue_url`` (tests, scripts) the service
delivers in the process that accepted the message, as before.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Optional

# the first retry after 60 s, then 120, 240, 480, at most 15 min (SQS allows 12 h; a message that waited
# that long is the dead-letter queue's)
FIRST_RETRY_S = 60
MAX_RETRY_S = 900


def backoff_s(receive_count: int, retry_after: Optional[int] = None) -> int:
    """How long a message whose ``receive_count``-th delivery failed waits before the next try."""
    delay = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, receive_count - 1))
    return max(delay, min(MAX_RETRY_S, retry_after or 0))


def body(key: str, release: bool = False) -> str:
    return json.dumps({"key": key, "release": release}, separators=(",", ":"))


def parse(text: str) -> tuple[str, bool]:
    """The key and release flag of a queue body; ValueError for anything else (it dead-letters)."""
    msg = json.loads(text)
    if not isinstance(msg, dict) or not isinstance(msg.get("key"), str) or not msg["key"] \
            or not isinstance(msg.get("release", False), bool):
        raise ValueError("not a notification message")
    return msg["key"], bool(msg.get("release", False))


class SqsDeliveryQueue:
    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()  # a batch being collected belongs to the thread (the job) collecting it

    @property
    def _buffer(self) -> Optional[list[str]]:
        return getattr(self._local, "buffer", None)

    @_buffer.setter
    def _buffer(self, value: Optional[list[str]]) -> None:
        self._local.buffer = value

    def _sqs(self) -> Any:
        from chalicelib.core import aws

        return aws.client("sqs")

    def enqueue(self, key: str, release: bool = False) -> None:
        if self._buffer is not None:
            self._buffer.append(body(key, release))
            if len(self._buffer) >= 10:
                self.flush()
            return
        self._sqs().send_message(QueueUrl=self.url, MessageBody=body(key, release))

    def start_batch(self) -> None:
        """Collect what is enqueued until ``flush`` (SendMessageBatch of ten): a job sending hundreds."""
        if self._buffer is None:
            self._buffer = []

    def flush(self, stop: bool = False) -> None:
        pending, self._buffer = (self._buffer or []), (None if stop else [])
        for at in range(0, len(pending), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(pending[at:at + 10])]
            for _ in range(3):  # entries SQS refused for a passing reason go again; then the caller retries
                resp = self._sqs().send_message_batch(QueueUrl=self.url, Entries=entries)
                failed = {f["Id"] for f in resp.get("Failed") or []}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            if entries:
                raise RuntimeError(f"the notifications queue refused {len(entries)} messages")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self._sqs().change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle,
                                              VisibilityTimeout=int(seconds))


def build_delivery_queue(settings: Any) -> Optional[SqsDeliveryQueue]:
    return SqsDeliveryQueue(settings.notifications_queue_url) if settings.notifications_queue_url else None
