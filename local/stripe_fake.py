"""A local Stripe-compatible server for Connect, which localstripe does not have.

Every response is built from Stripe's own published sample objects
(``../shared/stripe/fixtures3.json``, copied to ``local/stripe_fixtures.json``)
with only ids, timestamps and the fields the request set changed, so their
shape is Stripe's. It serves:
- ``POST /v1/accounts`` (honours ``Idempotency-Key``), ``GET /v1/accounts/<id>``
- ``POST /v1/account_links``
- ``GET /connect/onboard/<id>``: the page the onboarding link opens; submitting it
  enables charges and sends a signed ``account.updated`` event to the webhook URL.
Binds 127.0.0.1 only; whoever starts it stops it.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

FIXTURES = Path(__file__).resolve().parent / "stripe_fixtures.json"


def sign(payload: bytes, secret: str, timestamp: Optional[int] = None) -> str:
    """A ``Stripe-Signature`` header value, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class FakeStripe:
    def __init__(self, webhook_url: Optional[str] = None, webhook_secret: str = "whsec_local") -> None:
        self.fixtures = json.loads(FIXTURES.read_text())
        self.accounts: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None

    # ---------------------------------------------------------------- objects
    def create_account(self, form: dict[str, Any], key: Optional[str]) -> dict[str, Any]:
        with self._lock:
            if key and key in self.idempotent:
                return self.idempotent[key]
            acct = copy.deepcopy(self.fixtures["account"])
            acct.update(id="acct_" + secrets.token_hex(8), created=int(time.time()), charges_enabled=False,
                        payouts_enabled=False, details_submitted=False, type=form.get("type", "express"),
                        country=form.get("country", acct.get("country")), email=form.get("email"),
                        metadata={k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")})
            self.accounts[acct["id"]] = acct
            if key:
                self.idempotent[key] = acct
            return acct

    def account_link(self, form: dict[str, Any], base: str) -> Optional[dict[str, Any]]:
        if form.get("account") not in self.accounts:
            return None
        link = copy.deepcopy(self.fixtures["account_link"])
        link.update(created=int(time.time()), expires_at=int(time.time()) + 300,
                    url=f"{base}/connect/onboard/{form['account']}?return_url="
                        + urllib.parse.quote(form.get("return_url", ""), safe=""))
        return link

    def complete_onboarding(self, account_id: str) -> dict[str, Any]:
        """What Stripe does when the clinic finishes onboarding: charges on, event sent."""
        acct = self.accounts[account_id]
        acct.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
        event = copy.deepcopy(self.fixtures.get("event", {}))
        event.update(id="evt_" + secrets.token_hex(8), object="event", type="account.updated",
                     created=int(time.time()), data={"object": copy.deepcopy(acct)}, livemode=False)
        if self.webhook_url:
            payload = json.dumps(event).encode()
            req = urllib.request.Request(self.webhook_url, data=payload, method="POST", headers={
                "Content-Type": "application/json", "Stripe-Signature": sign(payload, self.webhook_secret)})
            urllib.request.urlopen(req, timeout=10).read()
        return event

    # ---------------------------------------------------------------- server
    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(6))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str) -> None:
                self._send(status, {"error": {"type": "invalid_request_error", "message": message}})

            def do_GET(self) -> None:  # noqa: N802
                path = urllib.parse.urlparse(self.path)
                parts = path.path.strip("/").split("/")
                if parts[:2] == ["v1", "accounts"] and len(parts) == 3 and parts[2] in fake.accounts:
                    return self._send(200, fake.accounts[parts[2]])
                if parts[:2] == ["connect", "onboard"] and len(parts) == 3 and parts[2] in fake.accounts:
                    page = (f"<!doctype html><title>Stripe onboarding (local)</title><h1>Local Stripe onboarding</h1>"
                            f"<form method=post><button>Complete onboarding for {parts[2]}</button></form>")
                    return self._send(200, page.encode(), "text/html")
                self._error(404, "No such resource")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw).items()}
                path = urllib.parse.urlparse(self.path)
                fake.requests.append(("POST", path.path, form))
                if self.headers.get("Authorization", "")[:10] not in ("Bearer sk_", "Bearer rk_") \
                        and path.path.startswith("/v1/"):
                    return self._error(401, "Invalid API Key provided")
                if path.path == "/v1/accounts":
                    return self._send(200, fake.create_account(form, self.headers.get("Idempotency-Key")))
                if path.path == "/v1/account_links":
                    host = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
                    link = fake.account_link(form, host)
                    return self._send(200, link) if link else self._error(400, "No such account")
                parts = path.path.strip("/").split("/")
                if parts[:2] == ["connect", "onboard"] and len(parts) == 3 and parts[2] in fake.accounts:
                    fake.complete_onboarding(parts[2])
                    target = urllib.parse.parse_qs(path.query).get("return_url", [""])[0]
                    self.send_response(303)
                    self.send_header("Location", target or "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self._error(404, "Unrecognized request URL")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, name="fake-stripe", daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
