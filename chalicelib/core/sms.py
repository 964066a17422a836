"""Sending SMS, behind a small gateway chosen by settings, and the texts of the account's SMS.

Every text names the app (setting ``app_name``), so a person who never asked for a code knows who
sent it. A code message ends with its own line ``@<app_domain> #<code>`` (setting ``app_domain``):
the origin-bound format that WebOTP in browsers, the Android SMS Retriever / User Consent API and iOS
one-time-code autofill read, so a phone offers the code only to the real app or site and never on a
phishing page that asks for it.

``SnsSmsGateway`` publishes through Amazon SNS (moto in tests); the console
gateway is for ``make run`` only and prints what would have been sent, marked
as local. Neither logs the number or the text.
"""
from __future__ import annotations

import sys
from typing import Any, Protocol

from chalicelib.core.settings import get_settings

# kind -> (English, Russian); {app} is the app's name, {code} the one-time code, {ending} digits of a number
TEXTS: dict[str, tuple[str, str]] = {
    "signup": ("{app}: your sign-up code is {code}. Valid 5 minutes. Do not share it with anyone.",
               "{app}: код для регистрации {code}. Действует 5 минут. Никому не сообщайте его."),
    "signup_exists": ("{app}: someone tried to sign up with your number. If it was you, sign in instead; "
                      "nothing has changed.",
                      "{app}: кто-то пытался зарегистрироваться с вашим номером. Если это были вы, просто войдите; "
                      "ничего не изменилось."),
    "login": ("{app}: your sign-in code is {code}. Valid 5 minutes. Do not share it with anyone.",
              "{app}: код для входа {code}. Действует 5 минут. Никому не сообщайте его."),
    "step_up": ("{app}: your confirmation code is {code}. Valid 5 minutes. Do not share it with anyone.",
                "{app}: код подтверждения {code}. Действует 5 минут. Никому не сообщайте его."),
    "phone_change": ("{app}: code to link this number to your account: {code}. Valid 5 minutes.",
                     "{app}: код для привязки этого номера к учётной записи: {code}. Действует 5 минут."),
    "password_reset": ("{app}: your password reset code is {code}. Valid 5 minutes. Do not share it with anyone.",
                       "{app}: код для сброса пароля {code}. Действует 5 минут. Никому не сообщайте его."),
    "phone_change_started": ("{app}: someone signed in to your account is moving it to the number ending "
                             "in {ending}. If it is not you, sign in, end all other sessions and change your "
                             "password now: the move needs the code sent to the new number.",
                             "{app}: из вашей учётной записи запрошен перенос на номер, оканчивающийся на {ending}. "
                             "Если это не вы, войдите, завершите все другие сеансы и смените пароль: без кода "
                             "с нового номера перенос не состоится."),
    "second_factor_delay": ("{app}: several wrong sign-in codes were entered for your account, so further tries "
                            "now wait longer. If it was not you, someone knows your password: reset it now.",
                            "{app}: для вашей учётной записи введено несколько неверных кодов входа, следующие "
                            "попытки будут медленнее. Если это не вы, ваш пароль кому-то известен: сбросьте его."),
    "second_factor_locked": ("{app}: sign-in to your account is stopped after too many wrong codes. Reset your "
                             "password by SMS to sign in again.",
                             "{app}: вход в учётную запись остановлен после слишком многих неверных кодов. "
                             "Сбросьте пароль по SMS, чтобы снова войти."),
}


def text(kind: str, lang: str, code: str | None = None, **kw: str) -> str:
    """The text of an SMS in ``lang`` (ru or en), naming the app; a code SMS ends with the
    origin-bound line ``@<domain> #<code>``."""
    s = get_settings()
    en, ru = TEXTS[kind]
    body = (ru if lang == "ru" else en).format(app=s.app_name, code=code, **kw)
    if code is not None:
        body += f"\n\n@{s.app_domain} #{code}"
    return body


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
