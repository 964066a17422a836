"""Every body is parsed safely: deeply nested JSON and duplicate keys are a 400 problem+json on every
public operation that takes a body (read from openapi.yaml), never a 500 and never a last-one-wins;
the correlation id is kept exactly as sent or replaced whole."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import PASSWORD, body, jpost, sign_up

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+79165550011"


def public_operations_with_a_body() -> list[tuple[str, str, str]]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("post", "put", "patch") or "requestBody" not in op:
                continue
            if op.get("security", spec.get("security")):
                continue  # signed-in operations: the gateway's authorizer answers before any body is read
            concrete = re.sub(r"\{[^}]+\}", "01JD6Q3D4R5T6V7W8X9Y0Z1A2B", path)
            found.append((op["operationId"], method, concrete))
    return found


PUBLIC = public_operations_with_a_body()

DEEP_ARRAYS = b"[" * 10000 + b"]" * 10000
DEEP_OBJECTS = b'{"a":' * 10000 + b"1" + b"}" * 10000
DEEP_IN_A_FIELD = b'{"phone": "+79165550011", "password": ' + b"[" * 5000 + b"]" * 5000 + b"}"
DUPLICATE_PASSWORD = b'{"phone": "+79165550011", "password": "wrong one", "password": "correct horse battery"}'


def send(client, method, path, raw):
    return getattr(client.http, method)(path, headers={"Content-Type": "application/json"}, body=raw)


def assert_problem_400(r, code):
    assert r.status_code == 400, (r.status_code, r.body[:300])
    assert r.headers["Content-Type"] == "application/problem+json"
    problem = body(r)
    assert problem["status"] == 400 and problem["title"]
    if code:
        assert problem["code"] == code, problem
    assert b"Traceback" not in (r.body if isinstance(r.body, bytes) else r.body.encode())
    return problem


def test_the_public_operations_with_a_body_are_found():
    ops = {op for op, _, _ in PUBLIC}
    assert {"signUp", "logIn", "verifyLogIn", "refreshTokens", "requestPasswordReset"} <= ops
    assert len(PUBLIC) >= 8


@pytest.mark.parametrize("raw", [DEEP_ARRAYS, DEEP_OBJECTS, DEEP_IN_A_FIELD], ids=["arrays", "objects", "in-a-field"])
@pytest.mark.parametrize("op,method,path", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_json_nested_ten_thousand_deep_is_a_400_problem_on_every_public_operation(client, op, method, path, raw):
    code = None if op == "stripeWebhook" else "json_too_deep"  # the webhook checks its signature first
    assert_problem_400(send(client, method, path, raw), code)


@pytest.mark.parametrize("op,method,path", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_a_key_given_twice_is_a_400_problem_naming_it_on_every_public_operation(client, op, method, path):
    raw = b'{"challenge_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2B", "challenge_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2C"}'
    problem = assert_problem_400(send(client, method, path, raw), None if op == "stripeWebhook" else "duplicate_key")
    if op != "stripeWebhook":
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("challenge_id", "duplicate_key")]


def test_a_duplicated_password_never_signs_in_with_the_last_one(client, outbox, fixed_clock):
    sign_up(client, outbox, PHONE)
    fixed_clock.advance(seconds=61)
    r = send(client, "post", "/auth/login", DUPLICATE_PASSWORD)
    problem = assert_problem_400(r, "duplicate_key")
    assert problem["errors"][0]["field"] == "password"
    # the right password alone still works, so the 400 came from the duplicate, not the account
    assert jpost(client, "/auth/login", {"phone": PHONE, "password": PASSWORD}).status_code == 202


def test_a_duplicate_inside_a_nested_object_is_named_by_its_path(client):
    raw = (b'{"challenge_id": "01JD6Q3D4R5T6V7W8X9Y0Z1A2B", "code": "123456", '
           b'"device": {"id": "a", "name": "x", "id": "b"}}')
    problem = assert_problem_400(send(client, "post", "/auth/login/verify", raw), "duplicate_key")
    assert problem["errors"][0]["field"] == "device.id"


def test_moderate_nesting_and_escaped_brackets_in_strings_still_parse(client):
    # brackets inside strings are text, not nesting: an ordinary 422/401, not json_too_deep
    r = jpost(client, "/auth/login", {"phone": PHONE, "password": "[[[[{{{{" * 20 + '\\"]'})
    assert r.status_code == 401


def test_deep_nesting_leaves_nothing_written(client, backend_env):
    from chalicelib.core import aws

    send(client, "post", "/auth/signup", DEEP_OBJECTS)
    assert aws.client("dynamodb").scan(TableName=backend_env["TABLE_NAME"])["Items"] == []


@pytest.mark.parametrize("sent", ["abc-123", "A" * 64, "7c1f0a52-docs_try-it"])
def test_a_correlation_id_matching_its_pattern_comes_back_exactly(client, sent):
    r = client.http.get("/health", headers={"X-Correlation-Id": sent})
    assert r.headers["X-Correlation-Id"] == sent


@pytest.mark.parametrize("sent", ["abc 123", "abc/123", "A" * 65, "id\u00e9", "<script>", "a.b"])
def test_a_correlation_id_off_its_pattern_is_replaced_whole_never_rewritten(client, sent):
    r = client.http.get("/health", headers={"X-Correlation-Id": sent})
    got = r.headers["X-Correlation-Id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", got)
    stripped = "".join(c for c in sent if c.isalnum() or c in "-_")[:64]
    assert got != sent and got != stripped and got not in sent


def test_json_parsing_helpers_alone():
    from chalicelib.core.errors import AppError
    from chalicelib.core.web import load_json

    assert load_json(b'{"a": [1, {"b": "]]]}}}"}]}') == {"a": [1, {"b": "]]]}}}"}]}
    for raw, code in ((b'{"a": 1, "a": 2}', "duplicate_key"), (b"[" * 33 + b"]" * 33, "json_too_deep"),
                      (b"{", "malformed_json")):
        with pytest.raises(AppError) as caught:
            load_json(raw)
        assert caught.value.code == code and caught.value.status == 400
    assert json.loads(b"[" * 32 + b"]" * 32) and load_json(b"[" * 32 + b"]" * 32)
