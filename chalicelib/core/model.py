"""The base of every pydantic model, and modules imported when first used: both for cold start.

A Lambda container imports ``app`` once, then answers its first request. Building the validators of
every model of every feature at import cost most of that first request (bench/coldstart.py), though
one request needs the models of one route. So models build their validator on first use
(``defer_build``), and api modules name their feature's models through ``lazy_module``: a route's
models load with the route.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from chalicelib.core import pydantic_plugins  # noqa: F401  (no plugin lookup: before pydantic builds a validator)
from chalicelib.core.lazy import lazy_module  # noqa: F401  (where api modules found it before)


class Model(BaseModel):
    """A pydantic model whose validator is built the first time it validates or serialises."""

    model_config = ConfigDict(defer_build=True)


class Strict(Model):
    """Unknown fields are rejected; strings are not silently coerced from numbers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def fields_error(code: str, message: str, *fields: str, model: str = "request") -> Exception:
    """A rule across fields as a validation error naming each field involved (``errors[]`` gets one entry a
    field, with a stable ``code``), raised from a model validator instead of a bare ``ValueError`` (which
    pydantic reports at the model, ``body``)."""
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    return ValidationError.from_exception_data(model, [
        InitErrorDetails(type=PydanticCustomError(code, message), loc=(f,), input=None) for f in fields])


def _calendar_day(value: Any) -> Any:
    """A day is ``YYYY-MM-DD`` and nothing else: pydantic alone also takes a midnight datetime string
    (``2026-11-30T00:00:00``) or a Unix time for a date, which a client meant as something else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            # parsed here: the JSON body is validated strictly, where the date check would see a str
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a calendar day (the month or the day is out of range)") from None
    raise ValueError("a calendar day like 2026-11-30 (no time, no offset)")


# Every date field of a request model is a Day (tests/unit/test_bad_input_and_profile.py).
Day = Annotated[date, BeforeValidator(_calendar_day)]
