"""AWS clients, created on first use and cached (never at import time).

boto3 is imported here lazily: it costs more cold start than the rest of the
app together, and routes that never touch AWS should not pay for it.
"""
from __future__ import annotations

import threading
from typing import Any

from chalicelib.core.settings import get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_hooks: list[Any] = []  # (event_name, handler) registered on every new client


def client(service: str) -> Any:
    cached = _clients.get(service)
    if cached is not None:
        return cached
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            settings = get_settings()
            endpoint = settings.dynamodb_endpoint if service == "dynamodb" else settings.aws_endpoint
            new = boto3.session.Session().client(
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
