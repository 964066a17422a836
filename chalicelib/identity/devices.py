"""Device tokens: proof that a client signed in to an account before, on this device.

Issued with every completed sign-in or sign-up (``device_token`` of the token pair) and sent back with
the next ``POST /auth/login``. It is ``<device id>.<expiry>.<mac>``, the mac a keyed hash bound to the
account, the device id and the expiry, so it cannot be made up, moved to another account or extended.
It opens nothing: it only decides which failure counter a sign-in attempt spends (its own device's,
which strangers cannot reach, instead of the account's counter for unseen clients and the address's).
A new sign-in on the same device renews it with the same device id.
"""
from __future__ import annotations

from typing import Optional

from chalicelib.core.crypto import keyed_hash, same
from chalicelib.core.ids import is_ulid, new_id


def _mac(user_id: str, device_id: str, expires: int) -> str:
    return keyed_hash("device", user_id, device_id, str(expires))[:40]


def issue(user_id: str, device_id: Optional[str], now: int, ttl_s: int) -> str:
    device_id = device_id or new_id()
    expires = now + ttl_s
    return f"{device_id}.{expires}.{_mac(user_id, device_id, expires)}"


def verify(token: Optional[str], user_id: Optional[str], now: int) -> Optional[str]:
    """The device id of a valid, unexpired token of this account, or None."""
    if not token or not user_id:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not is_ulid(parts[0]) or not parts[1].isdigit():
        return None
    device_id, expires = parts[0], int(parts[1])
    if expires <= now or not same(_mac(user_id, device_id, expires), parts[2]):
        return None
    return device_id
