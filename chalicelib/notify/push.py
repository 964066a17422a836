"""Push through Firebase Cloud Messaging, behind a small gateway chosen by settings.

``FcmPushGateway`` runs firebase-admin's own messaging code (``send_each_for_multicast``: all the
devices of one person in one call). In AWS its credentials are the service account kept in Secrets
Manager (``firebase_secret_arn``); tests and ``make run`` may point it at a local fake FCM HTTP v1
server (``fcm_endpoint``) with a static access token. ``LocalPushGateway`` (``push_gateway=local``)
prints what would be sent, marked local-only. Neither logs a token or a text.

Each token comes back with one outcome:
- ``sent``;
- ``invalid``: FCM answered UNREGISTERED, INVALID_ARGUMENT or SENDER_ID_MISMATCH; the device is
  removed at once and never tried again;
- ``retry``: quota (429), unavailable (503), internal errors or the network; the message stays
  pending and the outbox tries again with its own backoff. The SDK's status retries are turned off
  (it would sleep inside the function on every 503); ``retry_after`` carries FCM's Retry-After.
"""
from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Protocol

REMOVE_CODES = ("UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH")


@dataclass(frozen=True)
class PushResult:
    outcome: str  # sent | invalid | retry
    reason: str = ""
    retry_after: Optional[int] = None


class PushGateway(Protocol):
    def send(self, tokens: list[str], title: str, text: str, data: dict[str, str]) -> list[PushResult]: ...


class LocalPushGateway:
    """Local development only: the push goes to this process's console, not a phone."""

    def send(self, tokens: list[str], title: str, text: str, data: dict[str, str]) -> list[PushResult]:
        print(f"\n==== LOCAL ONLY - PUSH NOT SENT ==== to {len(tokens)} device(s): {title}: {text} {data}\n",
              file=sys.stderr, flush=True)
        return [PushResult("sent") for _ in tokens]


class _StaticToken:
    """A ``google.auth`` credential holding a fixed access token (for a local fake FCM server)."""

    def __init__(self, token: str) -> None:
        from firebase_admin import credentials
        from google.oauth2.credentials import Credentials

        class Cred(credentials.Base):
            def get_credential(self):  # noqa: D401 - firebase-admin's interface
                return Credentials(token=token)

        self.cred = Cred()


class FcmPushGateway:
    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._app: Any = None
        self._lock = threading.Lock()

    def _firebase_app(self) -> Any:
        if self._app is not None:
            return self._app
        with self._lock:
            if self._app is None:
                self._app = self._build()
        return self._app

    def _build(self) -> Any:
        import json

        import firebase_admin
        import requests
        from firebase_admin import credentials, messaging
        from urllib3.util import retry

        s = self._settings
        static = s.fcm_static_token.get_secret_value()
        if static:
            cred: Any = _StaticToken(static).cred
            project = s.fcm_project_id
        else:
            from chalicelib.core import secrets

            info = json.loads(secrets.resolve("firebase", "", s.firebase_secret_arn, lambda: ""))
            cred = credentials.Certificate(info)
            project = s.fcm_project_id or info.get("project_id")
        app = firebase_admin.initialize_app(cred, {"projectId": project, "httpTimeout": s.fcm_timeout_s},
                                            name=f"notify-{id(self)}")
        service = messaging._get_messaging_service(app)
        if s.fcm_endpoint:
            # firebase-admin builds https://fcm.googleapis.com/v1/projects/<id>/messages:send once per app;
            # the same path under the configured origin reaches the fake (tests, make run).
            service._fcm_url = f"{s.fcm_endpoint.rstrip('/')}/v1/projects/{project}/messages:send"
        no_status_retries = retry.Retry(connect=1, read=1, status=0, raise_on_status=False, allowed_methods=None)
        for scheme in ("http://", "https://"):
            service._client.session.mount(scheme, requests.adapters.HTTPAdapter(max_retries=no_status_retries))
        return app

    def send(self, tokens: list[str], title: str, text: str, data: dict[str, str]) -> list[PushResult]:
        from firebase_admin import messaging

        if not tokens:
            return []
        app = self._firebase_app()
        out: list[PushResult] = []
        for at in range(0, len(tokens), 500):  # FCM's multicast limit
            chunk = tokens[at:at + 500]
            with warnings.catch_warnings():
                # firebase-admin 7.7 marks registration tokens deprecated in favour of installation ids
                # (fids); the apps register FCM registration tokens, which FCM v1 still takes as "token".
                warnings.simplefilter("ignore", DeprecationWarning)
                message = messaging.MulticastMessage(
                    tokens=chunk, data=data, notification=messaging.Notification(title=title, body=text),
                    android=messaging.AndroidConfig(priority="high"),
                    apns=messaging.APNSConfig(payload=messaging.APNSPayload(aps=messaging.Aps(sound="default"))))
                batch = messaging.send_each_for_multicast(message, app=app)
            out += [self._outcome(r) for r in batch.responses]
        return out

    @staticmethod
    def _outcome(resp: Any) -> PushResult:
        if resp.success:
            return PushResult("sent")
        exc = resp.exception
        from firebase_admin import exceptions, messaging

        if isinstance(exc, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
            return PushResult("invalid", "UNREGISTERED" if isinstance(exc, messaging.UnregisteredError)
                              else "SENDER_ID_MISMATCH")
        if isinstance(exc, exceptions.InvalidArgumentError):
            return PushResult("invalid", "INVALID_ARGUMENT")
        retry_after = None
        http = getattr(exc, "http_response", None)
        if http is not None:
            try:
                retry_after = int(http.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        return PushResult("retry", getattr(exc, "code", type(exc).__name__), retry_after)


def build_push_gateway(settings: Any) -> PushGateway:
    return LocalPushGateway() if settings.push_gateway == "local" else FcmPushGateway(settings)
