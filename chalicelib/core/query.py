"""Query-string models without pydantic, for the routes a cold container answers first (the public catalogue).

A fresh Lambda that answers ``GET /catalog/clinics`` would otherwise import pydantic and build a validator for
one string and two numbers: about a fifth of its cold start (bench/coldstart.py). ``Query`` reads the few
shapes a query string has (text with bounds or a pattern, a whole number with bounds, one of some words) and
refuses what a pydantic model with ``extra="forbid"`` refuses, with the same error codes and messages, so a
client sees one kind of problem+json whichever model read its request. Bodies stay pydantic (core.web).
"""
from __future__ import annotations

import re
from typing import Any, ClassVar, Optional

from chalicelib.core.errors import FieldError

_INT = re.compile(r"^\s*[+-]?[0-9]+(\.0*)?\s*$")  # a whole number, also written 5.0 (a JSON Schema integer)


class QueryInvalid(ValueError):
    """What a query string got wrong, one entry a field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(", ".join(e.field for e in errors))
        self.errors = errors


class Param:
    """One query parameter: ``kind`` is ``str``, ``int`` or a tuple of the words it may be."""

    def __init__(self, kind: Any = str, *, default: Any = None, required: bool = False, ge: Optional[int] = None,
                 le: Optional[int] = None, min_length: Optional[int] = None, max_length: Optional[int] = None,
                 pattern: Optional[str] = None) -> None:
        self.name = ""
        self.kind, self.default, self.required = kind, default, required
        self.ge, self.le, self.min_length, self.max_length = ge, le, min_length, max_length
        self.pattern = pattern
        self._regex = re.compile(pattern) if pattern else None

    # What the contract test reads of a field, as it reads a pydantic one.
    def is_required(self) -> bool:
        return self.required

    @property
    def annotation(self) -> Any:
        return self.kind if isinstance(self.kind, type) else str

    @property
    def metadata(self) -> list[Any]:
        import annotated_types as at

        found: list[Any] = []
        for cls, value in ((at.Ge, self.ge), (at.Le, self.le), (at.MinLen, self.min_length),
                           (at.MaxLen, self.max_length)):
            if value is not None:
                found.append(cls(value))
        if self.pattern:
            found.append(type("Pattern", (), {"pattern": self.pattern})())
        return found

    def read(self, raw: Any) -> Any:
        """The value of ``raw`` (a query-string value), or a ``(code, message)`` tuple naming what is wrong."""
        if isinstance(self.kind, tuple):
            if raw not in self.kind:
                words = [f"'{w}'" for w in self.kind]
                return ("literal_error", f"Input should be {', '.join(words[:-1])} or {words[-1]}"
                        if len(words) > 1 else f"Input should be {words[0]}")
            return raw
        if self.kind is int:
            if not isinstance(raw, str) or not _INT.match(raw):
                return ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
            value = int(raw.strip().split(".")[0])
            if self.ge is not None and value < self.ge:
                return ("greater_than_equal", f"Input should be greater than or equal to {self.ge}")
            if self.le is not None and value > self.le:
                return ("less_than_equal", f"Input should be less than or equal to {self.le}")
            return value
        if not isinstance(raw, str):
            return ("string_type", "Input should be a valid string")
        if self.min_length is not None and len(raw) < self.min_length:
            return ("string_too_short", f"String should have at least {self.min_length} characters")
        if self.max_length is not None and len(raw) > self.max_length:
            return ("string_too_long", f"String should have at most {self.max_length} characters")
        if self._regex is not None and not self._regex.search(raw):
            return ("string_pattern_mismatch", f"String should match pattern '{self.pattern}'")
        return raw


def param(kind: Any = str, **options: Any) -> Any:
    """A parameter declared on a ``Query`` (typed ``Any`` so ``limit: int = param(int, ...)`` reads as an int)."""
    return Param(kind, **options)


class Query:
    """Declare parameters as annotated class attributes (``limit: int = param(int, default=20, ge=1, le=100)``);
    subclasses
    inherit their base's. ``model_validate`` reads a query string's dict; ``check`` may add rules across fields."""

    model_fields: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(cls.model_fields)
        for name, value in list(vars(cls).items()):
            if isinstance(value, Param):
                value.name = name
                fields[name] = value
        cls.model_fields = fields

    def __init__(self, **values: Any) -> None:
        for name, param in self.model_fields.items():
            setattr(self, name, values.get(name, param.default))

    def check(self) -> list[FieldError]:
        """Rules across fields; each error names every field it involves."""
        return []

    @classmethod
    def model_validate(cls, params: dict[str, Any]) -> "Query":
        errors: list[FieldError] = []
        values: dict[str, Any] = {}
        for name, param in cls.model_fields.items():
            if name not in params:
                if param.required:
                    errors.append(FieldError(name, "required", "Field required"))
                continue
            value = param.read(params[name])
            if isinstance(value, tuple):
                errors.append(FieldError(name, *value))
            else:
                values[name] = value
        errors += [FieldError(k, "unknown_field", "Extra inputs are not permitted")
                   for k in params if k not in cls.model_fields]
        if errors:
            raise QueryInvalid(errors)
        query = cls(**values)
        errors = query.check()
        if errors:
            raise QueryInvalid(errors)
        return query

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.model_fields)})"
