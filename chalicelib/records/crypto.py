"""Envelope encryption of card data, in the application, before anything reaches DynamoDB.

Each (patient, section) gets KMS data keys (``GenerateDataKey`` AES-256) with the encryption context
``{"patient": <id>, "section": <name>}``; entries are sealed with AES-GCM under the plaintext key, the
associated data binding the ciphertext to its item (patient, section, entry, version), and the KMS-
encrypted data key is stored next to the ciphertext. A plaintext data key is cached in the container
for a bounded time and number of uses (settings), so reading a card of five sections costs at most
five ``Decrypt`` calls and a busy container few ``GenerateDataKey`` calls.

Why ``cryptography`` AES-GCM and not the AWS Encryption SDK: see docs/security.md (records).

The KMS gateway is a small class over the boto3 KMS client (moto in tests and ``make run``, KMS in
AWS); nothing is created at import time.
"""
from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Optional

LOCAL_ALIAS = "alias/clinic-records-local"


class KmsGateway:
    """GenerateDataKey and Decrypt with an encryption context, on one key."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._key_id: Optional[str] = settings.records_kms_key_id
        self._lock = threading.Lock()

    def _client(self) -> Any:
        from chalicelib.core import aws

        return aws.client("kms")

    def key_id(self) -> str:
        if self._key_id:
            return self._key_id
        if self._settings.stage not in ("local", "test"):
            raise RuntimeError("RECORDS_KMS_KEY_ID must name the records key outside local and test")
        # local and test: KMS is moto; find or make the local key once (requests of one process may race here,
        # and so may two processes: the alias decides which key is the local one)
        with self._lock:
            if self._key_id:
                return self._key_id
            kms = self._client()
            try:
                self._key_id = kms.describe_key(KeyId=LOCAL_ALIAS)["KeyMetadata"]["KeyId"]
            except kms.exceptions.NotFoundException:
                kid = kms.create_key(Description="clinic records (local)")["KeyMetadata"]["KeyId"]
                try:
                    kms.create_alias(AliasName=LOCAL_ALIAS, TargetKeyId=kid)
                except kms.exceptions.AlreadyExistsException:
                    kid = kms.describe_key(KeyId=LOCAL_ALIAS)["KeyMetadata"]["KeyId"]
                self._key_id = kid
            return str(self._key_id)

    def generate_data_key(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        resp = self._client().generate_data_key(KeyId=self.key_id(), KeySpec="AES_256", EncryptionContext=context)
        return resp["Plaintext"], resp["CiphertextBlob"]

    def decrypt(self, blob: bytes, context: dict[str, str]) -> bytes:
        return self._client().decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=self.key_id())["Plaintext"]


class Sealer:
    """Seals and opens card payloads (bytes) for one (patient, section) at a time."""

    CACHE_SIZE = 512

    def __init__(self, kms: KmsGateway, ttl_s: int, max_uses: int) -> None:
        self._kms = kms
        self._ttl_s = ttl_s
        self._max_uses = max_uses
        self._lock = threading.Lock()
        # (patient, section) -> [plaintext, encrypted key, expires (monotonic), uses]
        self._enc: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        # encrypted key -> (plaintext, expires)
        self._dec: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    @staticmethod
    def context(patient_id: str, section: str) -> dict[str, str]:
        return {"patient": patient_id, "section": section}

    def _data_key(self, patient_id: str, section: str) -> tuple[bytes, bytes]:
        now = time.monotonic()
        slot = (patient_id, section)
        with self._lock:
            cached = self._enc.get(slot)
            if cached and cached[2] > now and cached[3] < self._max_uses:
                cached[3] += 1
                return cached[0], cached[1]
        plain, blob = self._kms.generate_data_key(self.context(patient_id, section))
        with self._lock:
            self._enc[slot] = [plain, blob, now + self._ttl_s, 1]
            self._enc.move_to_end(slot)
            while len(self._enc) > self.CACHE_SIZE:
                self._enc.popitem(last=False)
        return plain, blob

    def _plain_key(self, patient_id: str, section: str, blob: bytes) -> bytes:
        now = time.monotonic()
        with self._lock:
            cached = self._dec.get(blob)
            if cached and cached[1] > now:
                return cached[0]
        plain = self._kms.decrypt(blob, self.context(patient_id, section))
        with self._lock:
            self._dec[blob] = (plain, now + self._ttl_s)
            while len(self._dec) > self.CACHE_SIZE:
                self._dec.popitem(last=False)
        return plain

    def seal(self, patient_id: str, section: str, aad: str, payload: bytes) -> dict[str, str]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key, blob = self._data_key(patient_id, section)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, payload, aad.encode())
        b64 = base64.b64encode
        return {"k": b64(blob).decode(), "n": b64(nonce).decode(), "c": b64(sealed).decode(), "alg": "A256GCM"}

    def open(self, patient_id: str, section: str, aad: str, sealed: dict[str, str]) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        d = base64.b64decode
        key = self._plain_key(patient_id, section, d(sealed["k"]))
        return AESGCM(key).decrypt(d(sealed["n"]), d(sealed["c"]), aad.encode())
