"""Signed access tokens: JWT, ES256 (asymmetric), ``kid`` in the header for rotation.

The private key is a secret (core.secrets) that only the API's functions read. Verification (the
authorizer, a Lambda of its own) uses public keys: in AWS from their own secret
(``TOKEN_VERIFICATION_KEYS_SECRET_ARN``), locally derived from the signing key; it accepts the
current key id and any older public keys listed in settings while they phase out.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.core.secrets import token_signing_key_pem, token_verification_keys
from chalicelib.core.settings import SettingsError, get_settings

ALGORITHM = "ES256"
_keys: dict[str, Any] = {}


class TokenError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _private_key() -> Any:
    if "private" not in _keys:
        from cryptography.hazmat.primitives import serialization

        _keys["private"] = serialization.load_pem_private_key(token_signing_key_pem().encode(), password=None)
    return _keys["private"]


def _public_keys() -> dict[str, Any]:
    if "public" not in _keys:
        from cryptography.hazmat.primitives import serialization

        s = get_settings()
        found = {kid: serialization.load_pem_public_key(pem.encode())
                 for kid, pem in token_verification_keys().items()}
        if s.token_signing_kid not in found:
            if s.token_verification_keys_secret_arn:
                raise SettingsError(f"the token verification keys secret has no public key for TOKEN_SIGNING_KID "
                                    f"{s.token_signing_kid!r}: add it before signing with that key (docs/deploy.md)")
            found[s.token_signing_kid] = _private_key().public_key()  # local and tests: derived
        if s.token_verification_keys_json:
            for kid, pem in json.loads(s.token_verification_keys_json).items():
                found[kid] = serialization.load_pem_public_key(pem.encode())
        _keys["public"] = found
    return _keys["public"]


def sign(claims: dict[str, Any]) -> str:
    import jwt

    s = get_settings()
    payload = {"iss": s.token_issuer, "aud": s.token_audience, **claims}
    return jwt.encode(payload, _private_key(), algorithm=ALGORITHM, headers={"kid": s.token_signing_kid})


def verify(token: str, now: int) -> dict[str, Any]:
    """Claims of a valid token, or TokenError('token_invalid' | 'token_expired')."""
    import jwt

    s = get_settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("token_invalid") from None
    key = _public_keys().get(header.get("kid", ""))
    if key is None or header.get("alg") != ALGORITHM:
        raise TokenError("token_invalid")
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=s.token_audience, issuer=s.token_issuer,
            options={"require": ["exp", "iat", "sub", "sid", "role"],
                     "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError:
        raise TokenError("token_invalid") from None
    # Expiry against the injectable clock, not the machine's.
    if int(claims["exp"]) <= now:
        raise TokenError("token_expired")
    if int(claims["iat"]) > now + 60:
        raise TokenError("token_invalid")
    return claims


def reset_keys() -> None:
    _keys.clear()
