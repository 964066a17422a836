"""Secret material, resolved at run time.

In AWS each secret is a Secrets Manager ARN in the settings, fetched once per
container; a deployed stage never generates or defaults a secret (settings refuse
to start without the ARNs). Locally (stage ``local``/``test``) a missing secret is
generated; the local runner keeps it under ``local_state_dir`` so a restart keeps
sessions valid.
"""
from __future__ import annotations

import json
import os
import secrets as _secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chalicelib.core.settings import SettingsError, get_settings

_cache: dict[str, str] = {}
_lock = threading.Lock()


def _from_secrets_manager(arn: str) -> str:
    from chalicelib.core import aws

    return aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


def _local(name: str, generate: Callable[[], str]) -> str:
    settings = get_settings()
    if settings.stage not in ("local", "test"):
        raise SettingsError(f"secret {name} is not configured (stage {settings.stage} never generates one)")
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


def master_key() -> bytes:
    """The master secret every per-purpose key is derived from (core.crypto, HKDF)."""
    s = get_settings()
    value = resolve("master-key", s.master_key.get_secret_value(), s.master_key_secret_arn,
                    lambda: _secrets.token_hex(32))
    if len(value) < 32:
        raise SettingsError("the master key secret must hold at least 32 characters of random text")
    return value.encode()


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


def token_verification_keys() -> dict[str, str]:
    """The published public keys ``{kid: PEM}`` from their own secret (AWS stages); ``{}`` where none is
    configured (local and tests derive the public key from the signing key)."""
    arn = get_settings().token_verification_keys_secret_arn
    if not arn:
        return {}
    raw = resolve("token-verification-keys", "", arn, lambda: "{}")
    try:
        keys = json.loads(raw)
    except ValueError:
        keys = None
    if not isinstance(keys, dict) or not keys or not all(
            isinstance(k, str) and isinstance(v, str) and "PUBLIC KEY" in v for k, v in keys.items()):
        raise SettingsError("the token verification keys secret must be JSON {\"<kid>\": \"<public key PEM>\", ...} "
                            "(docs/deploy.md)")
    return keys


@dataclass(frozen=True)
class StripeKeys:
    secret_key: str
    publishable_key: str
    webhook_secret: str


STRIPE_FIELDS = {"secret_key": ("sk_", "rk_"), "publishable_key": ("pk_",), "webhook_secret": ("whsec_",)}


def stripe_keys() -> StripeKeys:
    """Stripe's keys. In AWS the secret (``STRIPE_SECRET_ARN``) is one JSON object with
    ``secret_key``, ``publishable_key`` and ``webhook_secret``; each field is checked for
    Stripe's prefix, so a placeholder or a pasted wrong key is a clear error, not a 401 later.
    Locally ``STRIPE_SECRET_KEY``/``STRIPE_WEBHOOK_SECRET`` or local defaults are used."""
    if "stripe" in _cache:
        return StripeKeys(**json.loads(_cache["stripe"]))
    s = get_settings()
    if s.stripe_secret_arn:
        raw = _from_secrets_manager(s.stripe_secret_arn)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise SettingsError("the Stripe secret must be a JSON object with secret_key, publishable_key and "
                                "webhook_secret (docs/deploy.md)")
        wrong = [f for f, prefixes in STRIPE_FIELDS.items()
                 if not isinstance(doc.get(f), str) or not doc[f].startswith(prefixes)]
        if wrong:
            raise SettingsError(f"the Stripe secret's fields {wrong} are missing or not Stripe keys "
                                "(secret_key sk_/rk_, publishable_key pk_, webhook_secret whsec_; docs/deploy.md)")
        keys = {f: doc[f] for f in STRIPE_FIELDS}
    else:
        if s.stage not in ("local", "test"):
            raise SettingsError(f"STRIPE_SECRET_ARN is not set (stage {s.stage} has no local Stripe keys)")
        keys = {"secret_key": s.stripe_secret_key.get_secret_value() or "sk_test_local",
                "publishable_key": "pk_test_local",
                "webhook_secret": s.stripe_webhook_secret.get_secret_value() or "whsec_local"}
    with _lock:
        _cache["stripe"] = json.dumps(keys)
    return StripeKeys(**keys)


def clear_cache() -> None:
    _cache.clear()
