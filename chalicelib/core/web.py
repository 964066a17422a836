"""The HTTP edge: request parsing, the caller, and the one place that maps
exceptions to problem+json responses (RFC 9457).

Feature ``api.py`` modules declare routes with :func:`route`; it parses and
validates nothing by itself but guarantees every failure leaves as a problem
document with a stable ``code``, and that protected routes only run for a
caller whose token the authorizer accepted.
"""
from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Type, TypeVar

from chalice.app import Blueprint, Request, Response

from chalicelib.core import i18n, log
from chalicelib.core.errors import AppError, FieldError, validation_failed

PROBLEM = "application/problem+json"
T = TypeVar("T")

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer established it."""

    user_id: str
    role: str
    session_id: str
    mfa: str = "sms"  # the second factor this session was opened (or upgraded) with


# --------------------------------------------------------------------------- problems

def problem_body(code: str, status: int, lang: str, detail: Optional[str] = None,
                 errors: Optional[list[FieldError]] = None, extra: Optional[dict] = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://docs.clinic.example/problems/{code.replace('_', '-')}",
        "title": i18n.title(code, lang),
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [{**e.as_dict(), "message": i18n.field_message(e.code, lang, e.message)} for e in errors]
    if extra:
        body.update(extra)
    return body


def problem_response(exc: BaseException, lang: str) -> Response:
    """The one mapping from an exception to what a client receives."""
    if isinstance(exc, AppError):
        headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM, **exc.headers}
        body = problem_body(exc.code, exc.status, lang, exc.detail, exc.errors, exc.extra)
        return Response(body=json.dumps(body, ensure_ascii=False), status_code=exc.status, headers=headers)
    # Anything else is a bug: log it with its stack, show nothing of it.
    log.error("unhandled_exception", exc_info=True, exception_type=type(exc).__name__)
    body = problem_body("internal_error", 500, lang)
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=500, headers={"Content-Type": PROBLEM})


# --------------------------------------------------------------------------- parsing

def _loc_to_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


_PYDANTIC_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "required",
}


def pydantic_errors(exc: Any, prefix: str = "") -> list[FieldError]:
    found = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        path = _loc_to_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path != "body" else prefix
        code = _PYDANTIC_CODES.get(err["type"], err["type"])
        message = err.get("msg", "invalid")
        if code == "value_error" and message.startswith("Value error, "):
            message = message[len("Value error, "):]
        found.append(FieldError(path, code, message))
    return found


MAX_JSON_DEPTH = 32  # objects and arrays inside one another; no request of this API needs more than 4


class _JsonObject(dict):
    """A parsed JSON object that remembers the keys it was given more than once."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    seen_twice: list[str] = []
    for k, v in pairs:
        if k in obj and k not in seen_twice:
            seen_twice.append(k)
        obj[k] = v
    if seen_twice:
        obj.duplicates = tuple(seen_twice)
    return obj


def _nesting_too_deep(raw: bytes | str, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit`` (outside strings), checked before any parser recurses."""
    depth = 0
    in_string = escaped = False
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _first_duplicate(data: Any) -> Optional[str]:
    """The field path of the first key given twice in one object, walking the document breadth-first."""
    queue: list[tuple[str, Any]] = [("", data)]
    while queue:
        path, node = queue.pop(0)
        if isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                return f"{path}.{key}" if path else key
            queue.extend(((f"{path}.{k}" if path else str(k)), v) for k, v in node.items())
        elif isinstance(node, list):
            queue.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
    return None


def load_json(raw: bytes | str) -> Any:
    """Parse a request body as strict JSON: 400 ``malformed_json`` for what is not JSON, 400
    ``json_too_deep`` past ``MAX_JSON_DEPTH`` levels (never the parser's recursion error), and 400
    ``duplicate_key`` naming the key given twice in one object (no silent last-one-wins)."""
    if _nesting_too_deep(raw, MAX_JSON_DEPTH):
        raise AppError(code="json_too_deep", status=400, detail=f"at most {MAX_JSON_DEPTH} levels of nesting")
    try:
        data = json.loads(raw, object_pairs_hook=_pairs)
    except RecursionError:  # pragma: no cover - the depth check above comes first
        raise AppError(code="json_too_deep", status=400) from None
    except (ValueError, UnicodeDecodeError):
        raise AppError(code="malformed_json", status=400) from None
    duplicate = _first_duplicate(data)
    if duplicate is not None:
        raise AppError(code="duplicate_key", status=400, detail=f"the key {duplicate!r} is given more than once",
                       errors=[FieldError(duplicate, "duplicate_key", "this key is given more than once")])
    return data


def _whole_numbers(value: Any) -> Any:
    """``value`` with every float that is a whole number made an int; ``value`` itself if none is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        items = {k: _whole_numbers(v) for k, v in value.items()}
        return value if all(items[k] is value[k] for k in value) else items
    if isinstance(value, list):
        elements = [_whole_numbers(v) for v in value]
        return value if all(a is b for a, b in zip(elements, value, strict=True)) else elements
    return value


def parse_body(request: Request, model: Type[T], max_bytes: int) -> T:
    """Strictly parse a JSON body into ``model``: malformed JSON, oversized bodies,
    deep nesting, duplicate keys, unknown fields and wrong types each become a 4xx naming the problem."""
    from pydantic import ValidationError

    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise AppError(code="body_too_large", status=413, detail=f"at most {max_bytes} bytes")
    if not raw.strip():
        data: Any = {}
    else:
        data = load_json(raw)
    if not isinstance(data, dict):
        raise validation_failed([FieldError("body", "type_error", "the body must be a JSON object")])
    try:
        # Strict JSON mode: 1 is not true, "1" is not a number, a date-time is not a date. A whole
        # number written with a fraction (763.0) is a JSON Schema integer, as openapi.yaml's
        # `type: integer` says: it is read as that integer (763.5 stays a float and is refused).
        text = json.dumps(whole, ensure_ascii=False) if (whole := _whole_numbers(data)) is not data else raw
        return model.model_validate_json(text or b"{}", strict=True)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise validation_failed(pydantic_errors(exc)) from None


def parse_query(request: Request, model: Type[T]) -> T:
    """A query string read by a pydantic model, or by a ``core.query.Query`` (no pydantic import: cold start)."""
    from chalicelib.core.query import Query, QueryInvalid

    params = dict(request.query_params or {})
    if issubclass(model, Query):
        try:
            return model.model_validate(params)  # type: ignore[return-value]
        except QueryInvalid as exc:
            raise validation_failed(exc.errors) from None
    from pydantic import ValidationError

    try:
        return model.model_validate(params)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise validation_failed(pydantic_errors(exc)) from None


def client_ip(request: Request) -> str:
    ctx = request.context or {}
    return (ctx.get("identity") or {}).get("sourceIp") or "unknown"


def language(request: Optional[Request]) -> str:
    if request is None:
        return i18n.DEFAULT
    headers: Mapping[str, str] = request.headers or {}
    return i18n.pick_language(headers.get("accept-language"))


def caller_from(request: Request) -> Caller:
    """The caller the authorizer accepted, or a 401 naming why not."""
    auth = (request.context or {}).get("authorizer") or {}
    error = auth.get("token_error")
    if error:
        raise AppError(code=str(error), status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    user_id, role, sid = auth.get("principalId"), auth.get("role"), auth.get("sid")
    if not user_id or not role or not sid:
        raise AppError(code="token_missing", status=401, headers={"WWW-Authenticate": "Bearer"})
    return Caller(user_id=str(user_id), role=str(role), session_id=str(sid), mfa=str(auth.get("mfa") or "sms"))


# --------------------------------------------------------------------------- responses

def json_response(body: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> Response:
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json", exclude_none=True)
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def no_content() -> Response:
    return Response(body="", status_code=204, headers={})


# --------------------------------------------------------------------------- routes

def route(bp: Blueprint, path: str, methods: tuple[str, ...] = ("GET",), authorizer: Any = None,
          **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route. The view receives ``(request, caller, **path_params)``;
    ``caller`` is None on public routes. Whatever it raises becomes problem+json."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**params: Any) -> Response:
            request = bp.current_request
            try:
                caller = caller_from(request) if authorizer is not None else None
                result = fn(request, caller, **params)
                return result if isinstance(result, Response) else json_response(result)
            except Exception as exc:  # the one place exceptions become responses
                return problem_response(exc, language(request))

        bp.route(path, methods=list(methods), authorizer=authorizer, **kwargs)(view)
        return fn

    return decorate


# --------------------------------------------------------------------------- CORS: the portal's origin only
# In AWS the portal is served from its own origin (CloudFront, PORTAL_BASE_URL) and calls the API
# with a Bearer token in the Authorization header: no cookies, so no Access-Control-Allow-Credentials.
# Exactly that origin gets CORS headers, on the preflight and on every answer; any other origin
# gets none (its browser then refuses to hand the answer to its script). Locally the app serves
# the portal itself (same origin, no CORS at all). docs/security.md states the rules.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Accept-Language, Idempotency-Key, X-Correlation-Id, If-Match"
CORS_EXPOSE_HEADERS = "Retry-After, X-Correlation-Id, Content-Language, Location, ETag"
CORS_MAX_AGE_S = 600


def cors_origin(request: Optional[Request]) -> Optional[str]:
    """The request's Origin when it is exactly the portal's, else None."""
    from chalicelib.core.settings import get_settings

    headers: Mapping[str, str] = (request.headers or {}) if request is not None else {}
    origin = headers.get("origin") or ""
    portal = (get_settings().portal_base_url or "").rstrip("/")
    return origin if portal and origin == portal else None


def _cors_headers(response: Response, origin: Optional[str]) -> None:
    response.headers["Vary"] = "Origin"  # caches keep the portal's answer apart from anyone else's
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def preflight(request: Request, methods: list[str]) -> Response:
    """``OPTIONS`` on a path: a CORS preflight from the portal's origin for a method the path
    serves gets 204 with the allowances; anything else is the 405 any unserved method gets."""
    origin = cors_origin(request)
    headers: Mapping[str, str] = request.headers or {}
    wanted = (headers.get("access-control-request-method") or "").upper()
    if origin and wanted in methods:
        return Response(body="", status_code=204, headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        })
    body = problem_body("method_not_allowed", 405, language(request))
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=405,
                    headers={"Content-Type": PROBLEM, "Allow": ", ".join(methods)})


def add_preflight_routes(app: Any) -> None:
    """One public ``OPTIONS`` route per path the app serves (API Gateway sends a preflight to the
    integration only when the method exists; it must have no authorizer, browsers send no token)."""
    for path, entries in list(app.routes.items()):
        methods = sorted(m for m in entries if m != "OPTIONS")
        if not methods or "OPTIONS" in entries:
            continue

        def view(_methods: list[str] = methods, **_params: Any) -> Response:
            return preflight(app.current_request, _methods)

        view.__name__ = "preflight_" + "".join(c if c.isalnum() else "_" for c in path)
        app.route(path, methods=["OPTIONS"])(view)


# --------------------------------------------------------------------------- middleware

_CHALICE_CODES = {
    405: "method_not_allowed",
    415: "unsupported_media_type",
    400: "malformed_json",
    413: "body_too_large",
}


CORRELATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def correlation_id_for(sent: Optional[str], request_id: Optional[str]) -> str:
    """The request's correlation id: the client's ``X-Correlation-Id`` exactly as sent when it matches
    ``[A-Za-z0-9_-]{1,64}``; otherwise (absent, too long, other characters) replaced whole by the
    gateway's request id, or a new id. Never a rewritten mix of the two."""
    if sent and CORRELATION_ID.fullmatch(sent):
        return sent
    if request_id and CORRELATION_ID.fullmatch(request_id):
        return request_id
    from chalicelib.core.ids import new_id

    return new_id()


def http_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Correlation id, request log line, security headers, and problem+json for
    the errors Chalice itself produces before a view runs (405, 415)."""
    request = event
    headers: Mapping[str, str] = request.headers or {}
    ctx = request.context or {}
    correlation_id = correlation_id_for(headers.get("x-correlation-id"), ctx.get("requestId"))
    log.set_correlation_id(correlation_id)
    started = time.perf_counter()
    try:
        response = get_response(request)
    except Exception as exc:  # pragma: no cover - views never raise past route()
        response = problem_response(exc, language(request))
    ctype = ""
    for k, v in response.headers.items():
        if k.lower() == "content-type":
            ctype = v if isinstance(v, str) else ",".join(v)
    if response.status_code >= 400 and ctype in ("", "application/json") and isinstance(response.body, dict) \
            and "Code" in response.body:
        code = _CHALICE_CODES.get(response.status_code, "internal_error")
        status = response.status_code if code != "internal_error" else 500
        if code == "internal_error":
            log.error("chalice_error", status=response.status_code)
        extra_headers = {k: v for k, v in response.headers.items() if k.lower() == "allow"}
        response = Response(body=json.dumps(problem_body(code, status, language(request)), ensure_ascii=False),
                            status_code=status, headers={"Content-Type": PROBLEM, **extra_headers})
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    _cors_headers(response, cors_origin(request))
    if correlation_id:
        response.headers["X-Correlation-Id"] = correlation_id
    response.headers["Content-Language"] = language(request)
    log.logger().info(
        "request",
        extra={
            "event": "request",
            "method": ctx.get("httpMethod"),
            "route": ctx.get("resourcePath"),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response
