"""Who may act on devices and inbox messages: only their own person. Devices and messages live under
the caller's own partition (``USER#<caller>``), so another person's id simply finds nothing (404)."""
from __future__ import annotations

import re
from typing import Any

from chalicelib.core.errors import not_found

_DEVICE_ID = re.compile(r"^[0-9a-f]{32}$")
_MESSAGE_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def owner(caller: Any) -> str:
    """The partition a caller's devices and inbox live in."""
    return str(caller.user_id)


def device_id(value: str) -> str:
    if not _DEVICE_ID.match(value or ""):
        raise not_found()
    return value


def message_id(value: str) -> str:
    if not _MESSAGE_ID.match(value or ""):
        raise not_found()
    return value
