"""Structured JSON logs with a correlation id: one JSON object per line on stdout (CloudWatch in AWS).

The line has the fields Powertools' Logger writes (``level``, ``location``, ``message``, ``timestamp``,
``service``, ``correlation_id``, the ``extra`` fields, ``exception``), from the standard library alone:
importing Powertools' Logger cost a quarter of a cold first request (bench/coldstart.py), and this
module is on every request's path.

Created on first use. Never pass a password, code, token, phone number or medical detail to these
functions: log ids and outcomes instead (a test captures the logs of a whole journey and checks that
none of those appear).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Optional

_correlation_id: ContextVar[Optional[str]] = ContextVar("correlation_id", default=None)
# what every LogRecord carries; anything else on a record came in through ``extra``
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
            + f",{int(record.msecs):03d}+0000",
            "service": self.service,
            "correlation_id": _correlation_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
            out["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(out, default=str, ensure_ascii=False)


class Logger:
    """The app's logger: a standard logger named after the service, writing JSON lines to stdout."""

    def __init__(self, service: str, level: str) -> None:
        self.name = service
        self.registered_formatter = JsonFormatter(service)
        self._log = logging.getLogger(service)
        self._log.setLevel(level.upper())
        self._log.propagate = False
        if not any(getattr(h, "_clinic_json", False) for h in self._log.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(self.registered_formatter)
            handler._clinic_json = True  # type: ignore[attr-defined]
            self._log.addHandler(handler)

    def set_correlation_id(self, value: Optional[str]) -> None:
        _correlation_id.set(value)

    def info(self, msg: str, extra: Optional[dict[str, Any]] = None) -> None:
        self._log.info(msg, extra=extra, stacklevel=2)

    def warning(self, msg: str, extra: Optional[dict[str, Any]] = None) -> None:
        self._log.warning(msg, extra=extra, stacklevel=2)

    def error(self, msg: str, extra: Optional[dict[str, Any]] = None, exc_info: bool = False) -> None:
        self._log.error(msg, extra=extra, exc_info=exc_info, stacklevel=2)


_logger: Optional[Logger] = None


def logger() -> Logger:
    global _logger
    if _logger is None:
        from chalicelib.core.settings import get_settings

        s = get_settings()
        _logger = Logger(service=s.service_name, level=s.log_level)
    return _logger


def set_correlation_id(value: str | None) -> None:
    _correlation_id.set(value)


def event(name: str, **fields: Any) -> None:
    """A business event: ``event("login.throttled", user_id=...)``."""
    logger().info(name, extra={"event": name, **fields})


def warning(name: str, **fields: Any) -> None:
    logger().warning(name, extra={"event": name, **fields})


def error(name: str, exc_info: bool = False, **fields: Any) -> None:
    logger().error(name, extra={"event": name, **fields}, exc_info=exc_info)
