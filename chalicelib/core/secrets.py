"""Secret material, resolved at run time.

In AWS each secret is a Secrets Manager ARN in the settings, fetched once per
container. Locally (stage ``local``/``test``) a missing secret is generated; the
local runner keeps it under ``local_state_dir`` so a restart keeps sessions valid.
"""
from __future__ import annotations

import os
import secrets as _secrets
import threading
from pathlib import Path
from typing import Callable

from chalicelib.core.settings import get_settings

_cache: dict[str, str] = {}
_lock = threading.Lock()


def _from_secrets_manager(arn: str) -> str:
    from chalicelib.core import aws

    return aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


def _local(name: str, generate: Callable[[], str]) -> str:
    settings = get_settings()
    if settings.stage not in ("local", "test"):
        raise RuntimeError(f"secret {name} is not configured")
    if settings.local_state_dir:
        path = Path(settings.local_state_dir) / f"{name}.secret"
        if path.exists():
            return path.read_text()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
    return generate()


def resolve(name: str, value: str, arn: str | None, generate: Callable[[], str]) -> str:
    if name in _cache:
        return _cache[name]
    with _lock:
        if name not in _cache:
            if value:
                _cache[name] = value
            elif arn:
                _cache[name] = _from_secrets_manager(arn)
            else:
                _cache[name] = _local(name, generate)
    return _cache[name]


def code_pepper() -> bytes:
    s = get_settings()
    return resolve(
        "code-pepper", s.code_pepper.get_secret_value(), s.code_pepper_secret_arn, lambda: _secrets.token_hex(32)
    ).encode()


def _new_ec_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def token_signing_key_pem() -> str:
    s = get_settings()
    return resolve(
        "token-signing-key",
        s.token_signing_key_pem.get_secret_value(),
        s.token_signing_key_secret_arn,
        _new_ec_key,
    )


def clear_cache() -> None:
    _cache.clear()
