"""Sending e-mail, behind a small gateway chosen by settings (SES, or the local console)."""
from __future__ import annotations

import sys
from typing import Any, Protocol

from chalicelib.core.settings import get_settings


class EmailGateway(Protocol):
    def send(self, to: str, subject: str, text: str) -> None: ...


class SesEmailGateway:
    def send(self, to: str, subject: str, text: str) -> None:
        from chalicelib.core import aws, log
        from chalicelib.core.errors import AppError

        try:
            aws.client("sesv2").send_email(
                FromEmailAddress=get_settings().email_sender,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"},
                                    "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}}},
            )
        except Exception as exc:
            log.error("email.failed", error=type(exc).__name__)
            raise AppError(code="email_unavailable", status=503, headers={"Retry-After": "60"}) from exc


class ConsoleEmailGateway:
    """Local development only: the e-mail goes to this process's console."""

    def send(self, to: str, subject: str, text: str) -> None:
        name, _, domain = to.partition("@")
        print(f"\n==== LOCAL ONLY - E-MAIL NOT SENT ==== to {name[:1]}***@{domain}: {subject}\n{text}\n",
              file=sys.stderr, flush=True)


def build_email_gateway(settings: Any) -> EmailGateway:
    """The gateway settings choose (built once by the composition root, ``chalicelib.bootstrap``)."""
    return ConsoleEmailGateway() if settings.email_gateway == "console" else SesEmailGateway()
