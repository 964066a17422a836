"""The clinic web portal, served by the app for local use: ``GET /portal`` and ``GET /portal/{asset}``.

Locally (``make run``, the browser test) the app serves the static files of the repository's
``portal/`` folder from here, so the portal and the API share one origin and no CORS is needed.
In AWS the portal is deployed to S3 (behind CloudFront) as plain static files; this blueprint is
a convenience of the local stage and is not what serves clinics in production.

Only the files in :data:`ASSETS` are served, each with its content type; any other name is a 404
problem+json (nothing is read from a path taken from the request). Every response carries a strict
Content-Security-Policy: scripts, styles and connections from this origin only, no inline script
or style, no framing.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from chalice.app import Blueprint, Response

from chalicelib.core.errors import not_found
from chalicelib.core.web import route

bp = Blueprint(__name__)

PORTAL_DIR = Path(__file__).resolve().parents[2] / "portal"

# name -> content type. The allow-list: nothing else under portal/ (or anywhere) is served.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "styles.css": "text/css; charset=utf-8",
    # pages in files of their own (portal/app.js, "pages in files of their own")
    "payments.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "feedback.js": "text/javascript; charset=utf-8",
}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _read(name: str) -> str:
    # Read on every request (a few KB): edits show on reload while developing locally.
    return (PORTAL_DIR / name).read_text(encoding="utf-8")


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise not_found()
    try:
        text = _read(name)
    except FileNotFoundError:
        raise not_found() from None
    return Response(body=text, status_code=200, headers={"Content-Type": ASSETS[name], **HEADERS})


@route(bp, "/portal")
def portal_index(request, caller):
    # The page links its files relatively (app.js, styles.css), so it must be loaded as /portal/.
    # API Gateway and chalice local both route /portal/ here too; only the bare path is redirected.
    path = (request.context or {}).get("path") or "/portal"
    if not path.endswith("/"):
        target = path + "/"
        return Response(body=f'<!doctype html><title>Portal</title><a href="{escape(target)}">{escape(target)}</a>',
                        status_code=308,
                        headers={"Location": target, "Content-Type": "text/html; charset=utf-8", **HEADERS})
    return _asset("index.html")


@route(bp, "/portal/{asset}")
def portal_asset(request, caller, asset):
    return _asset(asset)
