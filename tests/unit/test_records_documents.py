"""Documents in the card: a presigned POST that pins key, type, size and KMS encryption; downloads valid for
minutes, issued only to someone who may see the document at that moment (moto accepts expired and tampered
URLs, so the scope and lifetime are asserted here, on what our code issues)."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import backend_env, grant, records_module, records_world  # noqa: F401  (one world per module)
from tests.unit.test_records_access import log_items
from tests.unit.test_records_card import raw_table

PDF = {"name": "MRI of the knee - Ivanova.pdf", "content_type": "application/pdf", "size_bytes": 2048}


@pytest.fixture
def w(client, outbox, fixed_clock):
    return records_world(client, outbox, fixed_clock)


def upload_as_the_browser_would(up: dict, data: bytes, content_type: str | None = None) -> None:
    """Put the object with the fields the presigned POST fixes (the browser sends them as form fields)."""
    from chalicelib.core import aws

    f = up["fields"]
    bucket = urlparse(up["url"]).path.strip("/") or urlparse(up["url"]).hostname.split(".")[0]
    aws.client("s3").put_object(Bucket=bucket, Key=f["key"], Body=data, ContentType=content_type or f["Content-Type"],
                                ServerSideEncryption="aws:kms",
                                SSEKMSKeyId=f["x-amz-server-side-encryption-aws-kms-key-id"])


def test_an_upload_is_pinned_to_its_key_type_size_and_the_records_key(client, w, fixed_clock):
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    doc = ok(jpost(client, "/me/card/documents", PDF, token=t), 201)
    assert doc["status"] == "pending" and doc["name"] == PDF["name"]
    up = doc["upload"]
    key = up["fields"]["key"]
    assert key == f"records/{pid}/{doc['document_id']}" and "MRI" not in key  # the name is never in the key
    policy = json.loads(base64.b64decode(up["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 2048, 2048] in conditions
    assert {"Content-Type": "application/pdf"} in conditions and {"key": key} in conditions
    assert {"x-amz-server-side-encryption": "aws:kms"} in conditions
    assert any("x-amz-server-side-encryption-aws-kms-key-id" in c for c in conditions if isinstance(c, dict))
    assert doc["upload_expires_at"] == (fixed_clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    C = f"/me/card/documents/{doc['document_id']}/complete"
    r = jpost(client, C, {}, token=t)
    assert r.status_code == 409 and body(r)["code"] == "upload_missing"
    upload_as_the_browser_would(up, b"%PDF-" + b"x" * 100)  # not the announced size
    r = jpost(client, C, {}, token=t)
    assert r.status_code == 409 and body(r)["code"] == "upload_mismatch"
    assert ok(jpost(client, "/me/card", token=t, method="get"))["documents"] == []  # not shown until it is right
    upload_as_the_browser_would(up, b"%PDF-" + b"x" * 2043)
    assert ok(jpost(client, C, {}, token=t))["status"] == "available"
    [shown] = ok(jpost(client, "/me/card", token=t, method="get"))["documents"]
    assert shown["name"] == PDF["name"] and shown["size_bytes"] == 2048
    assert "mri of the knee" not in raw_table().lower()


def _available(client, w) -> dict:
    t = w["patient"]["token"]
    doc = ok(jpost(client, "/me/card/documents", PDF, token=t), 201)
    upload_as_the_browser_would(doc["upload"], b"%PDF-" + b"x" * 2043)
    return ok(jpost(client, f"/me/card/documents/{doc['document_id']}/complete", {}, token=t))


def test_a_download_link_lives_minutes_and_is_issued_only_to_who_may_see_it_now(client, w, fixed_clock):
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    doc = _available(client, w)
    did = doc["document_id"]
    mine = ok(jpost(client, f"/me/card/documents/{did}/download", token=t, method="get"))
    q = parse_qs(urlparse(mine["url"]).query)
    assert q["X-Amz-Expires"] == ["300"] and urlparse(mine["url"]).path.endswith(f"/records/{pid}/{did}")
    assert mine["expires_at"] == (fixed_clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(log_items(w)) == 0  # the patient's own download is no disclosure

    shared = f"/patients/{pid}/card/documents/{did}/download"
    d = w["doctor"]["token"]
    assert jpost(client, shared, token=d, method="get").status_code == 404  # no grant
    until = (fixed_clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant(client, t, until, doctor_id=w["doctor"]["user_id"], sections=["allergies"])
    assert jpost(client, shared, token=d, method="get").status_code == 404  # documents not in scope
    g = grant(client, t, until, doctor_id=w["doctor"]["user_id"], sections=["documents"])
    link = ok(jpost(client, shared, token=d, method="get"))
    assert parse_qs(urlparse(link["url"]).query)["X-Amz-Expires"] == ["300"]
    [event] = log_items(w)
    assert event["entries"] == [did] and event["sections"] == ["documents"] and g["grant_id"] in event["grant_ids"]
    assert [x["document_id"] for x in ok(jpost(client, f"/patients/{pid}/card", token=d, method="get"))["documents"]] \
        == [did]
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    assert jpost(client, shared, token=d, method="get").status_code == 404  # revoked: at once
    # another patient, even with the id and key guessed; staff offices
    assert jpost(client, f"/me/card/documents/{did}/download", token=w["other"]["token"], method="get").status_code \
        == 404
    assert jpost(client, shared, token=w["other"]["token"], method="get").status_code == 404
    for who in ("admin_a", "platform"):
        assert jpost(client, shared, token=w[who]["token"], method="get").status_code == 403
    assert len(log_items(w)) == 2  # the doctor's download and the doctor's card read; nothing for the denials


@pytest.mark.parametrize("payload,field,code", [
    ({"size_bytes": 25 * 1024 * 1024 + 1}, "size_bytes", "too_large"),
    ({"size_bytes": 0}, "size_bytes", "greater_than_equal"),
    ({"content_type": "text/html"}, "content_type", "literal_error"),
    ({"content_type": "application/x-msdownload"}, "content_type", "literal_error"),
    ({"name": ""}, "name", "string_too_short"),
    ({"path": "../etc"}, "path", "unknown_field"),
])
def test_bad_uploads_are_422_naming_the_field_and_leave_nothing(client, w, payload, field, code):
    t = w["patient"]["token"]
    r = jpost(client, "/me/card/documents", {**PDF, **payload}, token=t)
    assert r.status_code == 422, r.body
    assert (field, code) in [(e["field"], e["code"]) for e in body(r)["errors"]]
    from chalicelib.records import store

    assert store.read_card_all(w["patient"]["user_id"])["document"] == []
