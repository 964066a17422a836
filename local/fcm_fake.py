"""A local fake of the FCM HTTP v1 API, for tests and ``make run`` (never deployed).

It answers ``POST /v1/projects/<project>/messages:send`` as FCM does: ``{"name": ...}`` on success, and
FCM's error documents (status, ``google.firebase.fcm.v1.FcmError`` detail with the ``errorCode``) for
UNREGISTERED (404), INVALID_ARGUMENT (400), SENDER_ID_MISMATCH (403), QUOTA_EXCEEDED (429) and
UNAVAILABLE (503), the last two with ``Retry-After``. A request without the expected bearer token is
a 401. It binds 127.0.0.1 only, on a free port, and keeps what it received for the tests to read.

    fake = FakeFcm(access_token="local-fcm-token").start()
    fake.answer("tok...", "UNREGISTERED")   # this token from now on
    fake.down("UNAVAILABLE")                # every token, until fake.down(None)
    fake.sent                               # [(token, message)] accepted, in order
    fake.stop()
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages"),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
}
_PATH = re.compile(r"^/v1/projects/([A-Za-z0-9\-_]+)/messages:send$")


class FakeFcm:
    def __init__(self, access_token: str = "local-fcm-token", project: str = "clinic-local",
                 retry_after: int = 30) -> None:
        self.access_token = access_token
        self.project = project
        self.retry_after = retry_after
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[tuple[str, str]] = []
        self._answers: dict[str, str] = {}
        self._down: Optional[str] = None
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._count = 0

    # ------------------------------------------------------------------ control

    def answer(self, token: str, code: Optional[str]) -> None:
        with self._lock:
            if code is None:
                self._answers.pop(token, None)
            else:
                self._answers[token] = code

    def down(self, code: Optional[str]) -> None:
        with self._lock:
            self._down = code

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeFcm":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's interface
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def tokens_sent(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.sent]

    # ------------------------------------------------------------------ serving

    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
               headers: Optional[dict[str, str]] = None) -> None:
        raw = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)

    def _error(self, h: BaseHTTPRequestHandler, code: str) -> None:
        status, grpc, message = ERRORS[code]
        body = {"error": {"code": status, "message": message, "status": grpc, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}
        headers = {"Retry-After": str(self.retry_after)} if status in (429, 503) else None
        self._reply(h, status, body, headers)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        match = _PATH.match(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if not match or match.group(1) != self.project:
            return self._reply(h, 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})
        if h.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self._reply(h, 401, {"error": {"code": 401, "message": "Request had invalid authentication "
                                                  "credentials.", "status": "UNAUTHENTICATED"}})
        try:
            message = json.loads(raw)["message"]
            token = message["token"]
        except (ValueError, KeyError, TypeError):
            return self._error(h, "INVALID_ARGUMENT")
        with self._lock:
            code = self._down or self._answers.get(token)
            if code is None:
                self._count += 1
                self.sent.append((token, message))
                name = f"projects/{self.project}/messages/{self._count}"
            else:
                self.refused.append((token, code))
        if code is not None:
            return self._error(h, code)
        self._reply(h, 200, {"name": name})
