"""Follow-ups of identity events, run by the outbox consumers (never inside the request)."""
from __future__ import annotations

from typing import Any, Callable


def event_handlers(service: Any) -> dict[str, list[tuple[str, Callable[[dict[str, Any]], None]]]]:
    """By kind: (handler name, callable taking the event). Each runs at most once to success per event."""

    def tell_owner(event: dict[str, Any]) -> None:
        # through the notification service (once per event, a copy in the inbox); still by SMS
        from chalicelib import bootstrap

        bootstrap.notify().tell_owner(event["event_id"], event["data"])

    return {"identity.owner_notice": [("tell_owner", tell_owner)]}
