"""Sending SMS, behind a small gateway chosen by settings.

``SnsSmsGateway`` publishes through Amazon SNS (moto in tests); the console
gateway is for ``make run`` only and prints what would have been sent, marked
as local. Neither logs the number or the text.
"""
from __future__ import annotations

import sys
from typing import Any, Protocol

from chalicelib.core.settings import get_settings


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class SnsSmsGateway:
    def send(self, phone: str, text: str) -> None:
        from chalicelib.core import aws, log
        from chalicelib.core.errors import AppError

        s = get_settings()
        try:
            aws.client("sns").publish(
                PhoneNumber=phone,
                Message=text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                    "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": s.sms_sender_id},
                },
            )
        except Exception as exc:
            log.error("sms.failed", error=type(exc).__name__)
            raise AppError(code="sms_unavailable", status=503, headers={"Retry-After": "30"}) from exc


class ConsoleSmsGateway:
    """Local development only: the SMS goes to this process's console, not a phone."""

    def send(self, phone: str, text: str) -> None:
        masked = phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:]
        print(f"\n==== LOCAL ONLY - SMS NOT SENT ==== to {masked}: {text}\n", file=sys.stderr, flush=True)


def build_sms_gateway(settings: Any) -> SmsGateway:
    """The gateway settings choose (built once by the composition root, ``chalicelib.bootstrap``)."""
    return ConsoleSmsGateway() if settings.sms_gateway == "console" else SnsSmsGateway()
