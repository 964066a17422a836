"""Password rules (NIST SP 800-63B 5.1.1.2, ASVS 5 V6.2): length, a blocklist of common and breached
passwords, and nothing built from the account's own phone number, name or birth date.

- length: at least 8 characters, at most 128 (long passphrases welcome, no composition rules);
- blocklist: the 100,000 most common passwords of SecLists' ``10-million-password-list-top-100000``
  (MIT; shipped gzipped in ``data/``, 375 KB), compared case-insensitively. The set is built on the
  first password check (sign-up, reset or change), never at import: login does not pay for it;
- personal: the phone's digits, the first or last name (also transliterated, and as typed on the
  other keyboard layout), or the birth date in its usual digit forms, alone or with a few digits or
  symbols around them.

Every refusal is a 422 naming the field, with a stable code and a message in Russian and English
(``chalicelib.core.i18n.FIELD_MESSAGES``).
"""
from __future__ import annotations

import gzip
import re
from datetime import date
from pathlib import Path
from typing import Iterable, Optional

from chalicelib.core.errors import FieldError, validation_failed

MIN_LENGTH = 8
MAX_LENGTH = 128
BLOCKLIST_FILE = Path(__file__).with_name("data") / "common-passwords-100k.txt.gz"

_blocklist: Optional[frozenset[str]] = None


def blocklist() -> frozenset[str]:
    """The common passwords, lower-cased; read from the shipped file on first use."""
    global _blocklist
    if _blocklist is None:
        with gzip.open(BLOCKLIST_FILE, "rt", encoding="utf-8", errors="replace") as f:
            _blocklist = frozenset(line.strip().lower() for line in f if line.strip())
    return _blocklist


_RU_LAT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                   ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                    "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))
# the same keys on the Latin layout (a Russian word typed with the keyboard switched)
_RU_KEYS = dict(zip("йцукенгшщзхъфывапролджэячсмитьбюё", "qwertyuiop[]asdfghjkl;'zxcvbnm,.`", strict=True))


def _variants(name: str) -> set[str]:
    low = name.strip().lower()
    out = {low, "".join(_RU_LAT.get(c, c) for c in low), "".join(_RU_KEYS.get(c, c) for c in low)}
    out |= {v.replace("y", "i") for v in out} | {v.replace("kh", "h") for v in out}
    return {re.sub(r"[^0-9a-zа-яё\[\];',.`]", "", v) for v in out} - {""}


def _date_forms(d: date) -> set[str]:
    dd, mm, yyyy, yy = f"{d.day:02d}", f"{d.month:02d}", f"{d.year:04d}", f"{d.year % 100:02d}"
    return {dd + mm + yyyy, yyyy + mm + dd, dd + mm + yy, mm + dd + yyyy, yy + mm + dd, mm + dd + yy,
            f"{d.day}{d.month}{d.year}", dd + mm, yyyy}


def problems(password: str, *, phone: Optional[str] = None, names: Iterable[str] = (),
             birth_date: Optional[date] = None) -> Optional[tuple[str, str]]:
    """The first rule ``password`` breaks, as (code, English message), or None."""
    if len(password) < MIN_LENGTH:
        return "password_too_short", f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return "password_too_long", f"at most {MAX_LENGTH} characters"
    if password.lower() in blocklist() or password.strip().lower() in blocklist():
        return "password_common", "this password is one of the most common ones; choose another"
    flat = re.sub(r"[^0-9a-zа-яё\[\];',.`]", "", password.lower())
    digits = re.sub(r"\D", "", password)
    letters = re.sub(r"[0-9\W_]", "", password.lower())
    keys = re.sub(r"[0-9\s!@#$%^&*()_+=\-]", "", password.lower())  # letters, or layout-switched letters
    if phone:
        phone_digits = re.sub(r"\D", "", phone)
        national = phone_digits[-10:]
        if (len(digits) >= 7 and digits in phone_digits) or national in digits:
            return "password_personal", "do not build the password from your phone number"
    name_forms: set[str] = set()
    given = [n for n in names if n and n.strip()]
    for n in given:
        name_forms |= _variants(n)
    if len(given) >= 2:
        for a in given:
            for b in given:
                if a != b:
                    name_forms |= {x + y for x in _variants(a) for y in _variants(b)}
    leftover = len(flat) - len(letters)
    if name_forms and (letters in name_forms or keys in name_forms) and leftover <= 8:
        return "password_personal", "do not build the password from your name"
    if birth_date is not None:
        forms = _date_forms(birth_date)
        if digits in forms and (not letters or letters in name_forms or len(digits) >= len(flat) - 2):
            return "password_personal", "do not build the password from your birth date"
    return None


def refuse_weak(password: str, field: str, *, phone: Optional[str] = None, names: Iterable[str] = (),
                birth_date: Optional[date] = None) -> None:
    """422 naming ``field`` if the password breaks a rule."""
    found = problems(password, phone=phone, names=names, birth_date=birth_date)
    if found:
        raise validation_failed([FieldError(field, found[0], found[1])])
