"""Bad input gets a clear problem+json 4xx naming the field, and nothing is half written."""
import json

import pytest

from chalicelib.core import aws
from tests.conftest import body, jpost, sign_up, signup_payload

PHONE = "+79167770000"


def raw_post(client, path, raw, content_type="application/json", headers=None):
    return client.http.post(path, headers={"Content-Type": content_type, **(headers or {})}, body=raw)


def assert_problem(r, status, code):
    assert r.status_code == status, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    problem = body(r)
    assert problem["code"] == code and problem["status"] == status and problem["title"]
    return problem


def item_count(env):
    return len(aws.client("dynamodb").scan(TableName=env["TABLE_NAME"])["Items"])


def test_malformed_json(client, backend_env):
    assert_problem(raw_post(client, "/auth/signup", b'{"phone": "+7916'), 400, "malformed_json")
    assert item_count(backend_env) == 0


def test_unknown_field_is_rejected_by_name(client):
    p = assert_problem(jpost(client, "/auth/login", {"phone": PHONE, "password": "x" * 8, "admin": True}),
                       422, "validation_failed")
    assert p["errors"] == [{"field": "admin", "code": "unknown_field", "message": "Extra inputs are not permitted"}]


def test_wrong_types_name_each_field(client):
    payload = signup_payload(PHONE, birth_date=19900412, first_name=["x"], consent={"version": "2026-11"})
    p = assert_problem(jpost(client, "/auth/signup", payload), 422, "validation_failed")
    assert {e["field"] for e in p["errors"]} == {"birth_date", "first_name", "consent.accepted"}


@pytest.mark.parametrize("phone", ["+7916", "+70000000000", "not a phone", "+7 916 123 45 67 89 00"])
def test_bad_phone_numbers(client, outbox, phone):
    p = assert_problem(jpost(client, "/auth/signup", signup_payload(phone)), 422, "validation_failed")
    assert [e["field"] for e in p["errors"]] == ["phone"]
    assert outbox.all() == []


def test_phone_in_national_format_with_spaces_is_normalised(client, outbox):
    r = jpost(client, "/auth/signup", signup_payload("+7 (916) 123-45-67"))
    assert r.status_code == 202
    assert outbox.to("+79161234567")


def test_birth_date_in_the_future_and_consent_not_accepted(client):
    p = assert_problem(jpost(client, "/auth/signup", signup_payload(
        PHONE, birth_date="2030-01-01", consent={"version": "2026-11", "accepted": False})), 422, "validation_failed")
    assert {e["field"] for e in p["errors"]} == {"birth_date", "consent.accepted"}


def test_outdated_consent_version_is_refused(client):
    p = assert_problem(jpost(client, "/auth/signup", signup_payload(
        PHONE, consent={"version": "2019-01", "accepted": True})), 422, "validation_failed")
    assert p["errors"][0]["field"] == "consent.version"


def test_body_that_is_not_an_object(client):
    p = assert_problem(raw_post(client, "/auth/login", b"[1,2,3]"), 422, "validation_failed")
    assert p["errors"][0]["field"] == "body"


def test_oversized_body(client, backend_env):
    big = json.dumps(signup_payload(PHONE, first_name="a" * 70_000)).encode()
    assert_problem(raw_post(client, "/auth/signup", big), 413, "body_too_large")
    assert item_count(backend_env) == 0


def test_wrong_content_type(client):
    assert_problem(raw_post(client, "/auth/login", b"phone=1", content_type="text/plain"), 415,
                   "unsupported_media_type")


def test_wrong_method(client):
    r = client.http.delete("/auth/login")
    assert_problem(r, 405, "method_not_allowed")


def test_bad_challenge_ids_and_codes(client):
    p = assert_problem(jpost(client, "/auth/signup/verify", {"challenge_id": "x#y", "code": "123456"}),
                       422, "validation_failed")
    assert p["errors"][0]["field"] == "challenge_id"
    assert_problem(jpost(client, "/auth/signup/verify", {"challenge_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "code": "123456"}),
                   400, "challenge_closed")
    assert_problem(jpost(client, "/auth/challenges/bad%23id/resend", {}), 404, "not_found")


def test_problem_title_follows_accept_language(client):
    en = jpost(client, "/auth/login", {"phone": PHONE, "password": "wrong password"}, headers={"Accept-Language": "en"})
    ru = jpost(client, "/auth/login", {"phone": PHONE, "password": "wrong password"},
               headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert body(en)["title"] == "Wrong phone number or password"
    assert body(ru)["title"] == "Неверный номер телефона или пароль"
    assert en.headers["Content-Language"] == "en" and ru.headers["Content-Language"] == "ru"


def test_sms_text_follows_the_patients_language(client, outbox):
    jpost(client, "/auth/signup", signup_payload(PHONE, language="ru"))
    assert outbox.to(PHONE)[-1].startswith("Clinic: код для регистрации")


def test_responses_carry_a_correlation_id_and_no_store(client):
    r = client.http.get("/health", headers={"X-Correlation-Id": "abc-123"})
    assert r.headers["X-Correlation-Id"] == "abc-123"
    assert r.headers["Cache-Control"] == "no-store"


def test_concurrent_double_verify_creates_one_account(client, outbox, backend_env):
    """Verifying the same sign-up twice (a retried request) leaves exactly one account."""
    r = jpost(client, "/auth/signup", signup_payload(PHONE))
    ch = body(r)["challenge_id"]
    code = outbox.last_code(PHONE)
    first = jpost(client, "/auth/signup/verify", {"challenge_id": ch, "code": code})
    second = jpost(client, "/auth/signup/verify", {"challenge_id": ch, "code": code})
    assert (first.status_code, second.status_code) == (201, 400)
    items = aws.client("dynamodb").scan(TableName=backend_env["TABLE_NAME"])["Items"]
    assert sum(1 for i in items if i["type"]["S"] == "user") == 1


# ------------------------------------------------------------------ profile

def test_profile_read_and_edit(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    me = body(jpost(client, "/me", token=token, method="get"))
    r = jpost(client, "/me", {"first_name": "Анна-Мария", "language": "ru", "version": me["version"]},
              token=token, method="patch")
    assert r.status_code == 200 and body(r)["first_name"] == "Анна-Мария" and body(r)["version"] == me["version"] + 1
    # A stale version is a conflict, not a silent overwrite.
    r = jpost(client, "/me", {"last_name": "Иванова", "version": me["version"]}, token=token, method="patch")
    assert_problem(r, 409, "version_conflict")
    assert body(jpost(client, "/me", token=token, method="get"))["last_name"] == "Петрова"


def test_profile_cannot_change_phone_role_or_password_directly(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    for field, value in (("phone", "+79160000000"), ("role", "platform_admin"), ("password", "x" * 10)):
        p = assert_problem(jpost(client, "/me", {field: value}, token=token, method="patch"), 422, "validation_failed")
        assert p["errors"][0]["field"] == field
    assert body(jpost(client, "/me", token=token, method="get"))["role"] == "patient"


def test_profile_rejects_empty_names_and_null(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    p = assert_problem(jpost(client, "/me", {"first_name": "", "last_name": None}, token=token, method="patch"),
                       422, "validation_failed")
    assert {e["field"] for e in p["errors"]} == {"first_name", "last_name"}


@pytest.mark.parametrize("over,field", [
    ({"consent": {"version": "2026-11", "accepted": 1}}, "consent.accepted"),
    ({"birth_date": "1990-04-12T00:00:00"}, "birth_date"),
    ({"birth_date": 0}, "birth_date"),
    ({"first_name": 42}, "first_name"),
])
def test_json_types_are_taken_literally(client, outbox, over, field):
    """1 is not consent, a timestamp is not a date, a number is not a name."""
    p = assert_problem(jpost(client, "/auth/signup", signup_payload(PHONE, **over)), 422, "validation_failed")
    assert [e["field"] for e in p["errors"]] == [field]
    assert outbox.all() == []


def test_profile_version_must_be_an_integer(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    for bad in (True, "1", 1.5):  # a whole-number 1.0 is an integer (JSON Schema's rule, test_whole_number_integers)
        p = assert_problem(jpost(client, "/me", {"first_name": "Х", "version": bad}, token=token, method="patch"),
                           422, "validation_failed")
        assert p["errors"][0]["field"] == "version"


def test_every_problem_code_the_code_raises_has_a_title_in_both_languages():
    """A client shows the title to a person: no code falls back to its own identifier."""
    import pathlib
    import re

    from chalicelib.core.i18n import TITLES

    root = pathlib.Path(__file__).resolve().parents[2] / "chalicelib"
    codes: set[str] = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'\b(?:conflict|forbidden|not_found|bad_request|too_many|unauthorized)\(\s*"([a-z_]+)"',
                                text))
        codes |= set(re.findall(r'\bcode="([a-z_]+)"', text))
    assert len(codes) > 40
    assert sorted(c for c in codes if c not in TITLES) == []
    assert all(en and ru and en != ru for en, ru in (TITLES[c] for c in codes))


def _date_fields():
    """Every date field of every request model of every feature (a field typed ``date`` or ``Optional[date]``)."""
    import datetime
    import importlib
    import inspect
    import pkgutil
    import typing

    import chalicelib
    from chalicelib.core.model import Model

    found = []
    for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        if not info.name.endswith("models"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Model) or cls.__module__ != module.__name__:
                continue
            for name, field in cls.model_fields.items():
                args = typing.get_args(field.annotation) or (field.annotation,)
                if datetime.date in args and datetime.datetime not in args:
                    found.append((cls, name))
    return found


def test_every_date_field_takes_a_calendar_day_and_nothing_else():
    """From an outside review: a day given as "2026-11-30T00:00:00" or a Unix time was taken as that day (pydantic's
    lax dates); a client that sent a time meant something else. Each is now a 422 naming the field."""
    from pydantic import ValidationError

    fields = _date_fields()
    assert len(fields) >= 10, fields
    for cls, name in fields:
        for bad in ("2026-11-30T00:00:00", "2026-11-30T00:00:00Z", 1796083200, "20261130"):
            try:
                cls.model_validate({name: bad})
                raise AssertionError(f"{cls.__name__}.{name} took {bad!r}")
            except ValidationError as exc:
                assert any(e["loc"][:1] == (name,) for e in exc.errors()), (cls.__name__, name, bad)
        try:
            cls.model_validate({name: "2026-11-30"})
        except ValidationError as exc:
            assert not any(e["loc"][:1] == (name,) for e in exc.errors()), (cls.__name__, name, exc.errors())
