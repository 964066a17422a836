"""Structured JSON logs with a correlation id (Powertools Logger).

Created on first use so that importing the app stays cheap. Never pass a
password, code, token, phone number or medical detail to these functions:
log ids and outcomes instead (a test captures the logs of a whole journey and
checks that none of those appear).
"""
from __future__ import annotations

from typing import Any

_logger = None


def logger() -> Any:
    global _logger
    if _logger is None:
        from aws_lambda_powertools import Logger

        from chalicelib.core.settings import get_settings

        s = get_settings()
        _logger = Logger(service=s.service_name, level=s.log_level)
    return _logger


def set_correlation_id(value: str | None) -> None:
    logger().set_correlation_id(value)


def event(name: str, **fields: Any) -> None:
    """A business event: ``event("login.throttled", user_id=...)``."""
    logger().info(name, extra={"event": name, **fields})


def warning(name: str, **fields: Any) -> None:
    logger().warning(name, extra={"event": name, **fields})


def error(name: str, exc_info: bool = False, **fields: Any) -> None:
    logger().error(name, extra={"event": name, **fields}, exc_info=exc_info)
