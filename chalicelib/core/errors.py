"""Domain errors. Each carries what its problem+json response needs.

Services raise these; ``core.web`` is the one place that turns them (and any
other exception) into an HTTP response. Nothing here imports Chalice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class FieldError:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass
class AppError(Exception):
    """Base of every error a client may see. ``code`` is stable API."""

    code: str = "error"
    status: int = 400
    detail: Optional[str] = None
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:  # pragma: no cover - debugging aid
        return f"{self.status} {self.code}"


def bad_request(code: str, detail: str | None = None) -> AppError:
    return AppError(code=code, status=400, detail=detail)


def validation_failed(errors: list[FieldError]) -> AppError:
    return AppError(code="validation_failed", status=422, errors=errors)


def field_invalid(field_name: str, code: str, message: str) -> AppError:
    return validation_failed([FieldError(field_name, code, message)])


def unauthorized(code: str = "unauthorized", detail: str | None = None) -> AppError:
    return AppError(code=code, status=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(code: str = "forbidden", detail: str | None = None) -> AppError:
    return AppError(code=code, status=403, detail=detail)


def not_found(code: str = "not_found", detail: str | None = None) -> AppError:
    return AppError(code=code, status=404, detail=detail)


def conflict(code: str, detail: str | None = None) -> AppError:
    return AppError(code=code, status=409, detail=detail)


def too_many(code: str, retry_after_s: int, detail: str | None = None) -> AppError:
    retry_after_s = max(1, int(retry_after_s))
    return AppError(
        code=code,
        status=429,
        detail=detail,
        headers={"Retry-After": str(retry_after_s)},
        extra={"retry_after": retry_after_s},
    )
