"""What each kind of notification says, in Russian and English.

Every text is neutral on purpose: a push or an SMS is read on a lock screen, so none names a
service, a doctor's specialty, a diagnosis or a document. The app shows the rest after sign-in,
through the deep link (``link``: an opaque id the app resolves). Times are shown in the clinic's
zone, with the zone and its offset.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

# categories a person can tune; "service" can never be switched off entirely
CATEGORIES = ("service", "recall", "feedback")
CHANNELS = ("push", "sms")


@dataclass(frozen=True)
class Template:
    category: str
    must_arrive: bool  # falls back to SMS when there is no device or the push failed
    urgent: bool  # delivered in quiet hours too (time-bound: an offer for 15 minutes, a reminder, your turn)
    ru: tuple[str, str]  # title, text
    en: tuple[str, str]


TEMPLATES: dict[str, Template] = {
    "waitlist_offer": Template(
        "service", True, True,
        ("Освободилось время", "Освободилось время у врача из вашего листа ожидания: {time}. "
                               "Подтвердите в приложении за 15 минут."),
        ("A time is free", "A time with the doctor you waited for is free: {time}. "
                           "Confirm in the app within 15 minutes.")),
    "invitation": Template(
        "service", True, False,
        ("Приглашение на приём", "Врач приглашает вас на приём {time}. Ответьте в приложении."),
        ("An invitation to a visit", "Your doctor invites you to a visit on {time}. Answer in the app.")),
    "cancelled_by_clinic": Template(
        "service", True, False,
        ("Приём отменён", "Клиника отменила ваш приём {time}. Выберите другое время в приложении."),
        ("Visit cancelled", "The clinic cancelled your visit on {time}. Choose another time in the app.")),
    "rescheduled": Template(
        "service", False, False,
        ("Приём перенесён", "Ваш приём перенесён на {time}. Подробности в приложении."),
        ("Visit moved", "Your visit is moved to {time}. Details are in the app.")),
    "reminder": Template(
        "service", True, True,
        ("Напоминание о приёме", "Напоминаем о приёме {time}. Подробности в приложении."),
        ("Visit reminder", "A reminder of your visit on {time}. Details are in the app.")),
    "payment_link": Template(
        "service", True, False,
        ("Оплата приёма", "Оплатите приём {time} в приложении, чтобы сохранить время."),
        ("Pay for your visit", "Pay for your visit on {time} in the app to keep the time.")),
    "payment_failed": Template(
        "service", True, False,
        ("Оплата не прошла", "Оплата не прошла. Время за вами до конца брони: попробуйте ещё раз в приложении."),
        ("Payment failed",
         "The payment did not go through. The time is yours until the hold ends: try again in the app.")),
    "payment_refunded_no_visit": Template(
        "service", True, False,
        ("Деньги возвращены", "Оплата пришла после окончания брони, и время уже занято. Мы вернули всю сумму."),
        ("Money refunded", "Your payment came after the hold ended and the time was taken. We refunded it in full.")),
    "visit_may_change": Template(
        "service", True, False,
        ("Приём может измениться", "Ваш приём {time} может измениться: клиника предложит другого врача или время."),
        ("Your visit may change", "Your visit on {time} may change: the clinic will offer another doctor or time.")),
    "reassigned": Template(
        "service", True, False,
        ("Другой врач", "Ваш приём {time} проведёт другой врач. Подробности в приложении."),
        ("Another doctor", "Your visit on {time} will be with another doctor. Details are in the app.")),
    "security_notice": Template(  # identity's owner notices: their own text, always by SMS
        "service", True, True,
        ("Безопасность аккаунта", "Изменение в безопасности вашего аккаунта. Подробности в приложении."),
        ("Account security", "A change in your account's security. Details are in the app.")),
    "payment_received": Template(
        "service", False, False,
        ("Оплата получена", "Мы получили оплату {amount}. Чек в приложении."),
        ("Payment received", "We received your payment of {amount}. The receipt is in the app.")),
    "refund_made": Template(
        "service", False, False,
        ("Возврат оформлен", "Мы вернули {amount}. Банк зачислит деньги в свой обычный срок."),
        ("Refund made", "We refunded {amount}. Your bank will credit it in its usual time.")),
    "refund_owed": Template(
        "service", True, False,
        ("Возврат ждёт вас", "Клиника вернёт вам {amount} в регистратуре."),
        ("A refund is waiting for you", "The clinic will hand you back {amount} at its reception.")),
    "refund_at_reception": Template(
        "service", False, False,
        ("Возврат выдан", "Вам вернули {amount} в регистратуре клиники."),
        ("Refund handed back", "You were handed back {amount} at the clinic's reception.")),
    "cashback_earned": Template(
        "service", False, False,
        ("Начислен кешбэк", "Вам начислено {amount} кешбэка. Баланс в приложении."),
        ("Cashback earned", "You earned {amount} of cashback. The balance is in the app.")),
    "record_shared": Template(
        "service", False, False,
        ("Доступ к медкарте", "Открыт новый доступ к вашей медкарте. Проверить или отозвать его можно в приложении."),
        ("Medical card shared", "A new access to your medical card was granted. Review or revoke it in the app.")),
    "record_viewed": Template(
        "service", False, False,
        ("Медкарту просмотрели", "Вашу медкарту просмотрели. Кто и когда, видно в приложении."),
        ("Medical card viewed", "Your medical card was viewed. Who and when is shown in the app.")),
    "urgent_turn": Template(
        "service", True, True,
        ("Ваша очередь", "Врач готов вас принять. Откройте приложение."),
        ("Your turn", "The doctor is ready for you. Open the app.")),
    "recall": Template(
        "recall", False, False,
        ("Пора на приём", "Пора записаться на повторный приём. Выберите время в приложении."),
        ("Time for a visit", "It is time to book your next visit. Choose a time in the app.")),
    "preparation": Template(
        "service", True, False,
        ("Подготовка к приёму", "Перед приёмом {time} нужна подготовка. Инструкция в приложении."),
        ("Preparing for your visit", "Your visit on {time} needs preparation. The instructions are in the app.")),
    "follow_up": Template(
        "service", True, False,
        ("Повторный визит", "Врач советовал прийти снова в эти дни. Выберите время в приложении."),
        ("A follow-up visit", "Your doctor advised a follow-up visit about now. Choose a time in the app.")),
    "feedback_request": Template(
        "feedback", False, False,
        ("Оцените визит", "Как прошёл ваш визит {time}? Оцените его в приложении."),
        ("Rate your visit", "How was your visit on {time}? Rate it in the app.")),
}

# kinds about a visit that must still be ahead in one of these statuses when the message goes out (a message
# quiet hours held is dropped if its visit lapsed, was cancelled or moved meanwhile)
LIVE_VISIT: dict[str, tuple[str, ...]] = {
    "invitation": ("proposed",), "rescheduled": ("held", "confirmed"), "reminder": ("held", "confirmed"),
    "preparation": ("held", "confirmed"), "visit_may_change": ("held", "confirmed"),
    "reassigned": ("held", "confirmed"), "payment_link": ("held",),
}

_MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
              "октября", "ноября", "декабря")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(start_utc: Optional[str], zone_name: Optional[str], lang: str) -> str:
    """'1 декабря 09:00 (Europe/Kaliningrad, UTC+02:00)': the instant on the clinic's wall clock."""
    if not start_utc:
        return ""
    from datetime import timezone

    from chalicelib.core.tz import zone

    instant = datetime.fromisoformat(start_utc.replace("Z", "+00:00"))
    local = instant.astimezone(zone(zone_name) if zone_name else timezone.utc)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    if lang == "ru":
        day = f"{local.day} {_MONTHS_RU[local.month - 1]} {local:%H:%M}"
    else:
        day = f"{local.day} {_MONTHS_EN[local.month - 1]} {local:%H:%M}"
    return f"{day} ({local.tzinfo}, {offset})"


def money(amount: Optional[int], currency: Optional[str], lang: str) -> str:
    """'6 500,00 RUB' / '6,500.00 RUB': integer minor units shown in major units, never through a float."""
    if amount is None or not currency:
        return ""
    from chalicelib.core.money import MINOR_UNITS

    units = MINOR_UNITS.get(currency, 2)
    sign, amount = ("-" if amount < 0 else ""), abs(int(amount))
    major, minor = divmod(amount, 10 ** units) if units else (amount, 0)
    whole = f"{major:,}".replace(",", "\u00a0" if lang == "ru" else ",")
    frac = f"{',' if lang == 'ru' else '.'}{minor:0{units}d}" if units else ""
    return f"{sign}{whole}{frac} {currency}"


def render(kind: str, lang: str, params: dict[str, Any]) -> tuple[str, str]:
    """(title, text) of a kind in a language; ``params`` may carry ``start_utc`` and ``time_zone``, and
    ``amount`` with ``currency`` (minor units)."""
    t = TEMPLATES[kind]
    title, text = t.ru if lang == "ru" else t.en
    when = local_time(params.get("start_utc"), params.get("time_zone"), lang)
    paid = money(params.get("amount"), params.get("currency"), lang)
    return title, " ".join(text.format(time=when, amount=paid).split()).replace(" .", ".")
