"""The documents bucket behind one small class: presigned uploads whose POST policy pins the key, the
content type, the exact size and KMS encryption; presigned downloads valid for minutes; HEAD to confirm.

S3 is moto in tests and ``make run`` (which accepts expired or tampered URLs: expiry and scope are held
in our code and tests, not by the emulator). Nothing is created at import time.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

LOCAL_BUCKET = "clinic-records-local"


class DocumentStorage:
    def __init__(self, settings: Any, kms: Any) -> None:
        self._settings = settings
        self._kms = kms
        self._bucket: Optional[str] = settings.documents_bucket
        self._lock = threading.Lock()

    def _client(self) -> Any:
        from chalicelib.core import aws

        return aws.client("s3")

    def bucket(self) -> str:
        if self._bucket:
            return self._bucket
        if self._settings.stage not in ("local", "test"):
            raise RuntimeError("DOCUMENTS_BUCKET must name the documents bucket outside local and test")
        with self._lock:
            if not self._bucket:
                s3 = self._client()
                try:
                    s3.create_bucket(Bucket=LOCAL_BUCKET,
                                     CreateBucketConfiguration={"LocationConstraint": self._settings.aws_region})
                except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                    pass
                self._bucket = LOCAL_BUCKET
        return str(self._bucket)

    def upload(self, key: str, content_type: str, size: int, ttl_s: int) -> dict[str, Any]:
        """A presigned POST that accepts exactly this object: this key, this type, this many bytes, encrypted
        with the records key."""
        kms_key = self._kms.key_id()
        fields = {"Content-Type": content_type, "x-amz-server-side-encryption": "aws:kms",
                  "x-amz-server-side-encryption-aws-kms-key-id": kms_key}
        conditions: list[Any] = [{"key": key}, {"Content-Type": content_type},
                                 ["content-length-range", size, size],
                                 {"x-amz-server-side-encryption": "aws:kms"},
                                 {"x-amz-server-side-encryption-aws-kms-key-id": kms_key}]
        post = self._client().generate_presigned_post(Bucket=self.bucket(), Key=key, Fields=fields,
                                                       Conditions=conditions, ExpiresIn=ttl_s)
        return {"url": post["url"], "fields": post["fields"]}

    def download(self, key: str, ttl_s: int) -> str:
        return str(self._client().generate_presigned_url("get_object", Params={"Bucket": self.bucket(), "Key": key},
                                                         ExpiresIn=ttl_s))

    def head(self, key: str) -> Optional[dict[str, Any]]:
        s3 = self._client()
        try:
            return dict(s3.head_object(Bucket=self.bucket(), Key=key))
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
