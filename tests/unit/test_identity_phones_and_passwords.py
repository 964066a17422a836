"""Phones as people type them, SMS only to numbers that can take one; passwords that are neither common
nor built from the account's own phone, name or birth date. Each refusal is a 422 naming the field with
a message in Russian and English, and sends nothing."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.core.settings import reset_settings
from tests.conftest import PASSWORD, body, jpost, log_in, sign_up, signup_payload

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+79164440022"


def refused(r, field, code):
    assert r.status_code == 422, r.body
    assert r.headers["Content-Type"] == "application/problem+json"
    errors = body(r)["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(field, code)], errors
    return errors[0]["message"]


# ------------------------------------------------------------------ phones

def test_a_number_typed_the_russian_way_is_the_same_as_the_international_one(client, outbox, fixed_clock):
    r = jpost(client, "/auth/signup", signup_payload("8 (916) 444-00-22"))
    assert r.status_code == 202
    code = outbox.last_code(PHONE)
    assert jpost(client, "/auth/signup/verify", {"challenge_id": body(r)["challenge_id"], "code": code}).status_code == 201
    fixed_clock.advance(seconds=61)
    r = jpost(client, "/auth/login", {"phone": "+7 916 444 00 22", "password": PASSWORD})
    assert r.status_code == 202
    fixed_clock.advance(seconds=61)
    assert jpost(client, "/auth/login", {"phone": "89164440022", "password": PASSWORD}).status_code == 202
    assert len(outbox.to(PHONE)) == 3 and outbox.all() == [(PHONE, t) for t in outbox.to(PHONE)]


NOT_FOR_SMS = [
    ("+7 495 200-00-00", "phone_not_mobile"),        # Moscow landline
    ("8 800 200-00-00", "phone_not_mobile"),         # toll-free
    ("+7 809 505 05 05", "phone_not_mobile"),        # premium-rate
    ("+881 6 1234 5678", "phone_not_mobile"),        # Iridium satellite
    ("+870 772 123 456", "phone_not_mobile"),        # Inmarsat satellite
    ("+7 916 444 00 22 доб. 12", "phone_extension"),
    ("8 916 444 00 22 ext 12", "phone_extension"),
    ("+49 151 12345678", "phone_country_not_supported"),  # a German mobile: not in sms_countries
    ("+7 916", "phone_invalid"),
    ("not a phone", "phone_format"),
]


@pytest.mark.parametrize("phone,code", NOT_FOR_SMS, ids=[c for _, c in NOT_FOR_SMS])
@pytest.mark.parametrize("path", ["/auth/signup", "/auth/login", "/auth/password-reset"])
def test_numbers_that_cannot_take_an_sms_are_refused_naming_the_field(client, outbox, path, phone, code):
    payload = {"/auth/signup": signup_payload(phone), "/auth/login": {"phone": phone, "password": PASSWORD},
               "/auth/password-reset": {"phone": phone}}[path]
    refused(jpost(client, path, payload), "phone", code)
    assert outbox.all() == []


def test_a_phone_change_to_a_landline_is_refused(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    refused(jpost(client, "/me/phone", {"phone": "+7 495 200-00-00"}, token=token, method="put"), "phone",
            "phone_not_mobile")


def test_the_refusal_is_worded_in_both_languages(client):
    en = jpost(client, "/auth/signup", signup_payload("8 800 200-00-00"), headers={"Accept-Language": "en"})
    ru = jpost(client, "/auth/signup", signup_payload("8 800 200-00-00"), headers={"Accept-Language": "ru"})
    assert refused(en, "phone", "phone_not_mobile") == "This number cannot receive SMS; enter a mobile number"
    assert refused(ru, "phone", "phone_not_mobile") == "На этот номер нельзя отправить SMS, введите номер мобильного"


def test_the_country_list_is_a_setting(client, outbox, monkeypatch):
    monkeypatch.setenv("SMS_COUNTRIES", "RU,DE,GB")
    reset_settings()
    try:
        assert jpost(client, "/auth/signup", signup_payload("+49 151 12345678")).status_code == 202
        assert outbox.to("+4915112345678")
        # a country on the list still gets only mobiles: a London landline and a UK shared-cost number
        refused(jpost(client, "/auth/signup", signup_payload("+44 20 7946 0000")), "phone", "phone_not_mobile")
        refused(jpost(client, "/auth/signup", signup_payload("+44 845 464 7000")), "phone", "phone_not_mobile")
    finally:
        monkeypatch.delenv("SMS_COUNTRIES")
        reset_settings()


# ------------------------------------------------------------------ passwords

def _common_sample(step: int = 2500) -> list[str]:
    with gzip.open(ROOT / "chalicelib/identity/data/common-passwords-100k.txt.gz", "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    assert len(lines) >= 100_000
    long_enough = [p for p in lines if 8 <= len(p) <= 64 and p.isprintable() and p.strip() == p]
    return long_enough[::step] + long_enough[-3:]


def test_the_blocklist_holds_the_hundred_thousand_most_common_passwords():
    from chalicelib.identity import passwords

    assert len(passwords.blocklist()) > 95_000  # 100,000 lines, fewer once case is folded
    assert "password1" in passwords.blocklist() and "qwertyuiop" in passwords.blocklist()


def test_common_passwords_from_anywhere_in_the_list_are_refused_in_any_case(client, outbox):
    sample = _common_sample()
    assert len(sample) >= 15
    for i, common in enumerate(sample):
        spelled = common.upper() if i % 2 else common
        refused(jpost(client, "/auth/signup", signup_payload(f"+7916444{i:04d}", password=spelled)), "password",
                "password_common")
    assert outbox.all() == []


@pytest.mark.parametrize("password", [
    "89164440022", "+7 916 444-00-22", "pw9164440022",           # the phone
    "anna.petrova", "Petrova2024!", "AnnaPetrova", "fyyfgtnhjdf",  # the name, transliterated, other layout
    "12.04.1990", "19900412", "anna12041990",                      # the birth date (1990-04-12)
])
def test_passwords_built_from_the_phone_name_or_birth_date_are_refused(client, outbox, password):
    refused(jpost(client, "/auth/signup", signup_payload(PHONE, password=password)), "password", "password_personal")
    assert outbox.all() == []


@pytest.mark.parametrize("password", ["short7!", "x" * 129])
def test_length_limits(client, password):
    refused(jpost(client, "/auth/signup", signup_payload(PHONE, password=password)), "password",
            "password_too_short" if len(password) < 8 else "password_too_long")


def test_long_passphrases_are_welcome(client, outbox):
    phrase = "the quiet river runs past the old mill where we used to fish every summer, long ago"
    assert len(phrase) > 64
    assert jpost(client, "/auth/signup", signup_payload(PHONE, password=phrase)).status_code == 202


def test_reset_and_change_refuse_weak_passwords_and_change_nothing(client, outbox, fixed_clock):
    token = sign_up(client, outbox, PHONE)["access_token"]
    fixed_clock.advance(seconds=61)
    ch = body(jpost(client, "/auth/password-reset", {"phone": PHONE}))["challenge_id"]
    code = outbox.last_code(PHONE)
    for weak, why in (("iloveyou12", "password_common"), ("Anna1990!", "password_personal")):
        r = jpost(client, "/auth/password-reset/confirm", {"challenge_id": ch, "code": code, "new_password": weak})
        refused(r, "new_password", why)
    r = jpost(client, "/me/password", {"new_password": "Password123"}, token=token, method="put")
    refused(r, "new_password", "password_common")
    r = jpost(client, "/me/password", {"new_password": "9164440022ok"}, token=token, method="put")
    refused(r, "new_password", "password_personal")
    fixed_clock.advance(seconds=61)
    log_in(client, outbox, PHONE)  # the old password still holds


def test_the_blocklist_is_not_read_at_import():
    code = ("import app, sys; m = sys.modules.get('chalicelib.identity.passwords'); "
            "print('loaded' if m is not None and m._blocklist is not None else 'lazy')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "lazy", out.stderr[-2000:]
