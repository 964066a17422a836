"""AWS clients, created on first use and cached (never at import time).

The clients are botocore's, made from one shared botocore session. boto3 adds
nothing the app uses (its resources, its S3 transfer manager) and importing it
costs a fresh process about as much as the rest of the app's first request
(docs/benchmarks.md, cold start); S3's presigned POST and URL are botocore's own.
"""
from __future__ import annotations

import threading
from typing import Any

from chalicelib.core.settings import get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_hooks: list[Any] = []  # (event_name, handler) registered on every new client
_session: list[Any] = []  # the one botocore session (credentials and endpoint data resolved once)


def client(service: str) -> Any:
    cached = _clients.get(service)
    if cached is not None:
        return cached
    with _lock:
        if service not in _clients:
            from botocore.config import Config

            if not _session:
                import botocore.session

                _session.append(botocore.session.get_session())
            settings = get_settings()
            endpoint = settings.dynamodb_endpoint if service == "dynamodb" else settings.aws_endpoint
            new = _session[0].create_client(
                service,
                region_name=settings.aws_region,
                endpoint_url=endpoint,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5),
            )
            for event_name, handler in _hooks:
                new.meta.events.register(event_name, handler)
            _clients[service] = new
    return _clients[service]


def add_hook(event_name: str, handler: Any) -> None:
    """Register a botocore event handler on current and future clients (tests count calls with it)."""
    _hooks.append((event_name, handler))
    for existing in _clients.values():
        existing.meta.events.register(event_name, handler)


def remove_hook(event_name: str, handler: Any) -> None:
    _hooks.remove((event_name, handler))
    for existing in _clients.values():
        existing.meta.events.unregister(event_name, handler)


def reset_clients() -> None:
    with _lock:
        _clients.clear()
        _session.clear()
