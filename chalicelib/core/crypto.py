"""Small cryptographic helpers: one-time codes, keyed hashes, opaque tokens."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from chalicelib.core.secrets import code_pepper


def new_code(digits: int = 6) -> str:
    """A numeric one-time code from the OS CSPRNG."""
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def keyed_hash(*parts: str) -> str:
    """HMAC-SHA256 under the server pepper. Codes are stored only like this,
    bound to their context (e.g. the challenge id) by the extra parts."""
    msg = "\x1f".join(parts).encode()
    return hmac.new(code_pepper(), msg, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sign_blob(raw: bytes) -> bytes:
    return hmac.new(code_pepper(), b"cursor\x1f" + raw, hashlib.sha256).digest()[:16]


def verify_blob(blob: bytes) -> bytes:
    mac, raw = blob[:16], blob[16:]
    if not hmac.compare_digest(mac, sign_blob(raw)):
        raise ValueError("bad signature")
    return raw
