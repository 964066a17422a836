"""Consumers of the event outbox (see ``chalicelib.core.events``).

In AWS the table's stream feeds ``event_consumer`` with each new item (the CDK stack maps the stream
to this function, filtered to event items); the scheduled ``drain_events`` retries what failed and
takes anything the stream missed. ``make run`` fires the schedule through the local runner.
"""
from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core import log

bp = Blueprint(__name__)


@bp.lambda_function(name="event_consumer")
def event_consumer(event: dict[str, Any], context: Any) -> dict[str, int]:
    handled = bootstrap.outbox().consume_stream(event.get("Records", []))
    return {"handled": handled}


@bp.schedule("rate(1 minute)")
def drain_events(event: Any) -> dict[str, int]:
    result = bootstrap.outbox().drain()
    if result.done or result.retried or result.dead:
        log.event("job.drain_events", done=result.done, retried=result.retried, dead=result.dead)
    return {"done": result.done, "retried": result.retried, "dead": result.dead}
