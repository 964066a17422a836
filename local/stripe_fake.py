"""A local Stripe-compatible server for Connect, which localstripe does not have.

Every response is built from Stripe's own published sample objects
(``../shared/stripe/fixtures3.json``, copied to ``local/stripe_fixtures.json``)
with only ids, timestamps and the fields the request set changed, so their
shape is Stripe's. It serves:
- ``POST /v1/accounts`` (honours ``Idempotency-Key``), ``GET /v1/accounts/<id>``
- ``POST /v1/account_links``
- ``GET /connect/onboard/<id>``: the page the onboarding link opens; submitting it
  enables charges and sends a signed ``account.updated`` event to the webhook URL.
- local only: ``POST /_local/dashboard/refunds`` (a refund made in Stripe's dashboard), ``POST
  /_local/refunds/<id>/settle`` (a pending refund settles), ``POST /_local/replay/<event id>``.
Like Stripe it refuses connected accounts in countries Stripe does not serve (Russia
among them) with ``country_unsupported``, and a request without a secret key with 401.
``fail_next`` makes the next matching call answer as Stripe does when it declines,
refuses, throttles, fails or hangs, so the app's mapping is tested through the real SDK.
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

# Countries where Stripe onboards businesses (stripe.com/global); RU, BY and others are absent.
STRIPE_COUNTRIES = frozenset(
    "AE AT AU BE BG BR CA CH CY CZ DE DK EE ES FI FR GB GI GR HK HR HU IE IT JP LI LT LU LV MT MX MY NL NO NZ "
    "PL PT RO SE SG SI SK TH US".split())

# Error bodies as Stripe sends them (https://docs.stripe.com/api/errors).
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "card_declined": (402, {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                            "message": "Your card has insufficient funds."}),
    "invalid_request": (400, {"type": "invalid_request_error", "code": "parameter_invalid_empty",
                              "param": "email", "message": "You passed an empty string for 'email'."}),
    "account_not_ready": (400, {"type": "invalid_request_error", "code": "account_invalid",
                                "message": "The account has not completed onboarding."}),
    "rate_limited": (429, {"type": "invalid_request_error", "code": "rate_limit",
                           "message": "Too many requests hit the API too quickly."}),
    "idempotency": (400, {"type": "idempotency_error",
                          "message": "Keys for idempotent requests can only be used with the same parameters."}),
    "server_error": (500, {"type": "api_error", "message": "An unknown error occurred (internal trace id 1f2e)."}),
    "bad_key": (401, {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}),
}


def sign(payload: bytes, secret: str, timestamp: Optional[int] = None) -> str:
    """A ``Stripe-Signature`` header value, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class FakeStripe:
    def __init__(self, webhook_url: Optional[str] = None, webhook_secret: str = "whsec_local",
                 countries: frozenset[str] = STRIPE_COUNTRIES) -> None:
        self.fixtures = json.loads(FIXTURES.read_text())
        self.countries = countries  # where connected accounts may be created (Stripe's list by default)
        self.accounts: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.api_keys: list[str] = []  # the secret key each API call was made with
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._lock = threading.Lock()
        self.server: Optional[ThreadingHTTPServer] = None
        self._faults: list[tuple[str, str, float]] = []  # (path prefix, error name or "hang", seconds)
        from local.stripe_payments import StripePayments

        # Customers, PaymentIntents, Refunds, Checkout Sessions, ephemeral keys (local/stripe_payments.py)
        self.payments = StripePayments(self.fixtures, self.deliver)
        self.deliveries: list[tuple[str, int]] = []  # (event id, HTTP status) of each webhook sent

    def deliver(self, event: dict[str, Any]) -> None:
        """Send one signed event to the webhook URL (if any), as Stripe does; a failure is recorded, not raised."""
        if not self.webhook_url:
            return
        payload = json.dumps(event).encode()
        req = urllib.request.Request(self.webhook_url, data=payload, method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, self.webhook_secret)})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.deliveries.append((event["id"], resp.status))
        except Exception as exc:  # the app down or answering 4xx/5xx: Stripe would retry later
            self.deliveries.append((event["id"], getattr(exc, "code", 0) or 0))

    def replay(self, event_id: str) -> None:
        """Send an event again (Stripe's "resend" in the dashboard; ``stripe events resend``)."""
        self.deliver(next(e for e in self.payments.events if e["id"] == event_id))

    def signed(self, event: dict[str, Any]) -> tuple[bytes, str]:
        """An event's body and its ``Stripe-Signature`` header, for a test to post itself."""
        payload = json.dumps(event).encode()
        return payload, sign(payload, self.webhook_secret)

    def fail_next(self, path: str, error: str, times: int = 1, hang_s: float = 0.0) -> None:
        """The next ``times`` calls under ``path`` answer ``ERRORS[error]`` (or, for ``"hang"``,
        answer only after ``hang_s`` seconds, as a stalled Stripe would)."""
        if error != "hang" and error not in ERRORS:
            raise ValueError(f"unknown error {error!r}; one of {sorted(ERRORS)} or 'hang'")
        with self._lock:
            self._faults.extend([(path, error, hang_s)] * times)

    def _fault(self, path: str) -> Optional[tuple[str, float]]:
        with self._lock:
            for i, (prefix, error, hang_s) in enumerate(self._faults):
                if path.startswith(prefix):
                    del self._faults[i]
                    return error, hang_s
        return None

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

            def _error(self, status: int, message: str, **fields: Any) -> None:
                self._send(status, {"error": {"type": "invalid_request_error", "message": message, **fields}})

            def _base(self) -> str:
                return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

            def _authorised(self) -> bool:
                return self.headers.get("Authorization", "")[:10] in ("Bearer sk_", "Bearer rk_")

            def _injected(self, path: str) -> bool:
                fault = fake._fault(path)
                if fault is None:
                    return False
                error, hang_s = fault
                if error == "hang":
                    time.sleep(hang_s)
                    return False
                status, body = ERRORS[error]
                self._send(status, {"error": body})
                return True

            def do_GET(self) -> None:  # noqa: N802
                path = urllib.parse.urlparse(self.path)
                parts = path.path.strip("/").split("/")
                if parts[:1] == ["v1"] and self._injected(path.path):
                    return None
                if parts[:2] == ["v1", "accounts"] and len(parts) == 3 and parts[2] in fake.accounts:
                    return self._send(200, fake.accounts[parts[2]])
                if parts[:2] == ["checkout", "pay"] and len(parts) == 3 and parts[2] in fake.payments.sessions:
                    sess = fake.payments.sessions[parts[2]]
                    page = (f"<!doctype html><title>Stripe Checkout (local)</title><h1>Pay {sess['amount_total']} "
                            f"{sess['currency'].upper()}</h1><p>Test card 4242 4242 4242 4242</p>"
                            f"<form method=post><button>Pay</button></form>")
                    return self._send(200, page.encode(), "text/html")
                if parts == ["_local", "events"]:  # what was sent, newest last (local only)
                    return self._send(200, [{"id": e["id"], "type": e["type"]} for e in fake.payments.events])
                if parts[:1] == ["v1"] and self._authorised():
                    query = {k: v[-1] for k, v in urllib.parse.parse_qs(path.query).items()}
                    answer = fake.payments.handle("GET", path.path, query, None, self._base())
                    if answer is not None:
                        return self._send(*answer)
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
                fake.api_keys.append(self.headers.get("Authorization", "").removeprefix("Bearer "))
                if self.headers.get("Authorization", "")[:10] not in ("Bearer sk_", "Bearer rk_") \
                        and path.path.startswith("/v1/"):
                    return self._error(401, "Invalid API Key provided")
                if self._injected(path.path):
                    return None
                if path.path == "/v1/accounts":
                    if form.get("country") not in fake.countries:
                        return self._error(400, f"Connected accounts in {form.get('country')} are not supported.",
                                           code="country_unsupported", param="country")
                    return self._send(200, fake.create_account(form, self.headers.get("Idempotency-Key")))
                if path.path == "/v1/account_links":
                    host = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
                    link = fake.account_link(form, host)
                    return self._send(200, link) if link else self._error(400, "No such account")
                parts = path.path.strip("/").split("/")
                if parts[:2] == ["checkout", "pay"] and len(parts) == 3 and parts[2] in fake.payments.sessions:
                    try:
                        sess = fake.payments.pay_session(parts[2])
                    except ValueError as exc:
                        return self._error(400, str(exc))
                    self.send_response(303)
                    self.send_header("Location", sess.get("success_url") or "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if parts[:2] == ["_local", "replay"] and len(parts) == 3:  # resend an event (local only)
                    if not any(e["id"] == parts[2] for e in fake.payments.events):
                        return self._error(404, "No such event")
                    fake.replay(parts[2])
                    return self._send(200, {"replayed": parts[2], "deliveries": fake.deliveries[-1:]})
                if parts[:3] == ["_local", "dashboard", "refunds"] and len(parts) == 3:
                    # a refund made in Stripe's dashboard (local only): payment_intent, amount, status
                    if form.get("payment_intent") not in fake.payments.intents:
                        return self._error(400, "No such payment_intent", param="payment_intent")
                    amount = int(form["amount"]) if form.get("amount") else None
                    return self._send(*fake.payments.dashboard_refund(
                        form["payment_intent"], amount, form.get("status", "succeeded")))
                if parts[:2] == ["_local", "refunds"] and len(parts) == 4 and parts[3] == "settle":
                    return self._send(*fake.payments.settle_refund(parts[2], form.get("status", "succeeded")))
                answer = fake.payments.handle("POST", path.path, form, self.headers.get("Idempotency-Key"),
                                              self._base())
                if answer is not None:
                    return self._send(*answer)
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
