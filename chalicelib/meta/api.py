"""The contract and its readable page: /openapi.yaml, /openapi.json, /docs, and /health."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from chalice.app import Blueprint, Response

from chalicelib.core.web import json_response, route

bp = Blueprint(__name__)

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"  # a link to the top-level contract
DOCS_PATH = Path(__file__).resolve().parent / "docs.html"


@lru_cache(maxsize=1)
def spec_text() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def spec_json() -> str:
    import yaml

    return json.dumps(yaml.safe_load(spec_text()), ensure_ascii=False)


@route(bp, "/openapi.yaml")
def openapi_yaml(request, caller):
    return Response(body=spec_text(), status_code=200, headers={"Content-Type": "application/yaml; charset=utf-8"})


@route(bp, "/openapi.json")
def openapi_json(request, caller):
    return Response(body=spec_json(), status_code=200, headers={"Content-Type": "application/json"})


@route(bp, "/docs")
def docs(request, caller):
    return Response(
        body=DOCS_PATH.read_text(encoding="utf-8"), status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8",
                 "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"},
    )


@route(bp, "/health")
def health(request, caller):
    return json_response({"status": "ok"})


CONSENT_TEXT = {
    "ru": "Я даю согласие на обработку моих персональных данных, включая сведения о здоровье, в целях оказания "
          "медицинских услуг, записи на приём и напоминаний (152-ФЗ). Согласие можно отозвать в приложении.",
    "en": "I consent to the processing of my personal data, including health data, to receive medical services, "
          "book visits and get reminders (Russian Federal Law 152-FZ). I can withdraw it in the app.",
}


@route(bp, "/consent")
def consent(request, caller):
    """The consent a sign-up must accept: its current version and text."""
    from chalicelib.core.settings import get_settings

    return json_response({"version": get_settings().consent_version_current, "text": CONSENT_TEXT})
