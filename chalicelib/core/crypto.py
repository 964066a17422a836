"""Small cryptographic helpers: one-time codes, keyed hashes, opaque tokens.

One secret no longer does every job: each purpose has its own key, derived with
HKDF-SHA256 from the master key (core.secrets) and a per-purpose version
(settings ``key_versions``). Bumping one purpose's version rotates that key alone;
where a value must outlive a rotation (calendar feed URLs, list cursors) the
previous version is still accepted (``keyed_hashes``). Runbooks: docs/security.md.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from chalicelib.core.secrets import master_key
from chalicelib.core.settings import KEY_PURPOSES, get_settings

# The domain tag a caller passes first to ``keyed_hash`` names the purpose of its key.
# A tag not listed here is refused: a new use of a keyed hash must choose its purpose.
PURPOSE_OF_TAG = {
    "challenge": "login_codes",
    "refresh": "refresh_tokens",
    "recovery": "recovery_codes",
    "invite": "invitation_codes",
    "rate": "rate_limits",
    "rate-part": "rate_limits",
    "device": "device_tokens",
    "cursor": "cursors",
    "calendar-feed": "calendar_feeds",
    "video-room": "video_tokens",
    "video-join": "video_tokens",
}
assert set(PURPOSE_OF_TAG.values()) == set(KEY_PURPOSES)

_SALT = b"clinic-backend/hkdf/v1"
_keys: dict[tuple[bytes, str, int], bytes] = {}
_lock = threading.Lock()


def key_version(purpose: str) -> int:
    return int(get_settings().key_versions.get(purpose, 1))


def purpose_key(purpose: str, version: int | None = None) -> bytes:
    """The 32-byte key of one purpose at one version (the current one by default)."""
    if purpose not in KEY_PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    version = key_version(purpose) if version is None else version
    master = master_key()
    cache_key = (hashlib.sha256(master).digest(), purpose, version)
    if cache_key not in _keys:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                       info=f"{purpose}/v{version}".encode()).derive(master)
        with _lock:
            _keys[cache_key] = derived
    return _keys[cache_key]


def _purpose(tag: str) -> str:
    try:
        return PURPOSE_OF_TAG[tag]
    except KeyError:
        raise ValueError(f"keyed hash tag {tag!r} has no key purpose (core.crypto.PURPOSE_OF_TAG)") from None


def _mac(key: bytes, parts: tuple[str, ...]) -> str:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def new_code(digits: int = 6) -> str:
    """A numeric one-time code from the OS CSPRNG."""
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def keyed_hash(*parts: str) -> str:
    """HMAC-SHA256 under the current key of the purpose its first part names
    (``"challenge"``, ``"refresh"``, ...). Codes are stored only like this,
    bound to their context (e.g. the challenge id) by the extra parts."""
    return _mac(purpose_key(_purpose(parts[0])), parts)


def keyed_hashes(*parts: str) -> list[str]:
    """The keyed hash under the current key, then under the previous version's key
    (while a purpose is past version 1): what a verifier accepts during a rotation."""
    purpose = _purpose(parts[0])
    version = key_version(purpose)
    return [_mac(purpose_key(purpose, v), parts) for v in range(version, max(version - 2, 0), -1)]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def _blob_mac(key: bytes, raw: bytes) -> bytes:
    return hmac.new(key, b"cursor\x1f" + raw, hashlib.sha256).digest()[:16]


def sign_blob(raw: bytes) -> bytes:
    return _blob_mac(purpose_key("cursors"), raw)


def verify_blob(blob: bytes) -> bytes:
    """The signed bytes, if the cursor key (current or previous version) signed them."""
    mac, raw = blob[:16], blob[16:]
    version = key_version("cursors")
    for v in range(version, max(version - 2, 0), -1):
        if hmac.compare_digest(mac, _blob_mac(purpose_key("cursors", v), raw)):
            return raw
    raise ValueError("bad signature")


def reset_keys() -> None:
    _keys.clear()
