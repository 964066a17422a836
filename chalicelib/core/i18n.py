"""Texts meant for people, in Russian and English. ``Accept-Language`` picks one."""
from __future__ import annotations

SUPPORTED = ("ru", "en")
DEFAULT = "ru"


def pick_language(header: str | None) -> str:
    """The best of ru/en for an Accept-Language header (q-values honoured)."""
    if not header:
        return DEFAULT
    best, best_q = DEFAULT, -1.0
    for part in header.split(","):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        base = tag.split("-")[0]
        if base in SUPPORTED and q > best_q:
            best, best_q = base, q
    return best


# code -> (title en, title ru)
TITLES: dict[str, tuple[str, str]] = {
    "validation_failed": ("The request has invalid fields", "В запросе есть ошибки в полях"),
    "malformed_json": ("The request body is not valid JSON", "Тело запроса — некорректный JSON"),
    "body_too_large": ("The request body is too large", "Тело запроса слишком большое"),
    "json_too_deep": ("The request body is nested too deeply", "Тело запроса слишком глубоко вложено"),
    "duplicate_key": ("A key is given twice in one JSON object", "Ключ повторяется в одном JSON-объекте"),
    "unsupported_media_type": ("Send the body as application/json", "Отправьте тело как application/json"),
    "method_not_allowed": ("This method is not allowed here", "Этот метод здесь недоступен"),
    "unauthorized": ("Sign in to continue", "Войдите, чтобы продолжить"),
    "token_missing": ("Sign in to continue", "Войдите, чтобы продолжить"),
    "token_invalid": ("The access token is not valid", "Токен доступа недействителен"),
    "token_expired": ("The access token has expired", "Срок действия токена доступа истёк"),
    "session_revoked": ("This session has ended; sign in again", "Сеанс завершён, войдите снова"),
    "forbidden": ("You may not do this", "У вас нет прав на это действие"),
    "not_found": ("Not found", "Не найдено"),
    "invalid_credentials": ("Wrong phone number or password", "Неверный номер телефона или пароль"),
    "invalid_code": ("The code is wrong", "Неверный код"),
    "code_expired": ("The code has expired; request a new one", "Срок действия кода истёк, запросите новый"),
    "challenge_closed": ("This code can no longer be used; request a new one",
                         "Этот код больше нельзя использовать, запросите новый"),
    "too_many_attempts": ("Too many wrong codes; request a new one", "Слишком много неверных кодов, запросите новый"),
    "resend_too_soon": ("Wait before requesting another code", "Подождите, прежде чем запросить новый код"),
    "sms_limit": ("Too many codes sent to this number; try later",
                  "На этот номер отправлено слишком много кодов, попробуйте позже"),
    "client_sms_limit": ("Too many codes requested from this device; try later",
                         "С этого устройства запрошено слишком много кодов, попробуйте позже"),
    "second_factor_throttled": ("Too many wrong codes for this account; wait before the next try",
                                "Слишком много неверных кодов для этой учётной записи, "
                                "подождите перед следующей попыткой"),
    "second_factor_locked": ("Sign-in is stopped after too many wrong codes; reset your password by SMS",
                             "Вход остановлен после слишком многих неверных кодов, сбросьте пароль по SMS"),
    "login_throttled": ("Too many failed sign-in attempts; try later",
                        "Слишком много неудачных попыток входа, попробуйте позже"),
    "refresh_invalid": ("Sign in again", "Войдите снова"),
    "step_up_required": ("Confirm it is you with a fresh code first", "Сначала подтвердите, что это вы, новым кодом"),
    "phone_taken": ("This phone number belongs to another account", "Этот номер принадлежит другой учётной записи"),
    "account_exists": ("An account with this phone already exists; sign in",
                       "Учётная запись с этим номером уже есть, войдите"),
    "totp_not_enrolled": ("No authenticator app is enrolled", "Приложение-аутентификатор не подключено"),
    "totp_already_enrolled": ("An authenticator app is already enrolled", "Приложение-аутентификатор уже подключено"),
    "version_conflict": ("Someone changed this meanwhile; reload and retry", "Данные изменились, обновите и повторите"),
    "conflict": ("The request conflicts with the current state", "Запрос противоречит текущему состоянию"),
    "sms_unavailable": ("SMS cannot be sent right now; try again shortly",
                        "Сейчас не удаётся отправить SMS, попробуйте чуть позже"),
    "email_unavailable": ("E-mail cannot be sent right now; try again shortly",
                          "Сейчас не удаётся отправить письмо, попробуйте чуть позже"),
    "payment_provider_unavailable": ("The payment provider is not answering; try again shortly",
                                     "Платёжный сервис не отвечает, попробуйте чуть позже"),
    "payment_provider_busy": ("The payment provider is busy; try again in a few seconds",
                              "Платёжный сервис перегружен, повторите через несколько секунд"),
    "payment_request_rejected": ("The payment provider refused this request",
                                 "Платёжный сервис отклонил этот запрос"),
    "card_declined": ("The card was declined; try another card or ask your bank",
                      "Карта отклонена: попробуйте другую карту или обратитесь в банк"),
    "idempotency_conflict": ("The same request is already being processed; retry in a moment",
                             "Такой же запрос уже обрабатывается, повторите чуть позже"),
    "payouts_country_unsupported": ("Stripe payouts are not available in the clinic's country",
                                    "Выплаты через Stripe недоступны в стране регистрации клиники"),
    "role_not_allowed": ("Your account's role may not do this", "Роль вашей учётной записи не позволяет это действие"),
    "totp_required": ("Enrol an authenticator app and sign in with it first",
                      "Сначала подключите приложение-аутентификатор и войдите с ним"),
    "role_mismatch": ("This invitation is for another kind of account",
                      "Это приглашение для другого типа учётной записи"),
    "wrong_status": ("Not possible in the current status", "Невозможно в текущем статусе"),
    "branch_required": ("Add at least one branch first", "Сначала добавьте хотя бы один филиал"),
    "schedule_overlap": ("The doctor is already busy at this time", "У врача уже есть работа в это время"),
    "payouts_not_ready": ("Finish payout onboarding before requiring prepayment",
                          "Завершите подключение выплат, прежде чем требовать предоплату"),
    "last_admin": ("A clinic keeps at least one administrator", "У клиники должен остаться хотя бы один администратор"),
    "doctor_has_future_bookings": ("The doctor has visits ahead in this clinic: say what happens to them",
                                   "У врача есть предстоящие приёмы в этой клинике: укажите, что с ними делать"),
    "visit_too_long": ("This visit is too long to book in one go", "Этот приём слишком длинный для одной записи"),
    "already_queued": ("You are already in a queue", "Вы уже в очереди"),
    "chat_closed": ("The conversation is closed", "Переписка закрыта"),
    "clinic_not_found": ("No such clinic", "Клиника не найдена"),
    "idempotency_key_reused": ("This Idempotency-Key was used for another request",
                               "Этот Idempotency-Key уже использован для другого запроса"),
    "not_a_chat_visit": ("This is not a chat visit", "Это не чат-консультация"),
    "not_a_video_visit": ("This is not a video visit", "Это не видеоконсультация"),
    "not_on_shift": ("You are not on duty now", "Вы сейчас не на дежурстве"),
    "patient_not_found": ("No such patient of yours", "Такого пациента у вас нет"),
    "queue_empty": ("Nobody is waiting", "В очереди никого нет"),
    "slot_taken": ("Someone has just booked this time", "Это время только что заняли"),
    "patient_busy": ("You already have a visit at this time", "У вас уже есть приём в это время"),
    "visit_limit_per_doctor": ("The clinic's limit of upcoming visits with this doctor is reached",
                               "Достигнут лимит клиники на будущие приёмы у этого врача"),
    "visit_limit_per_day": ("The clinic's limit of visits on one day is reached",
                            "Достигнут лимит клиники на приёмы в один день"),
    "doctor_lacks_specialty": ("This doctor does not provide this service",
                               "Этот врач не оказывает эту услугу"),
    "doctor_busy": ("The doctor is in another consultation now", "Врач сейчас занят другой консультацией"),
    "slot_unavailable": ("This time is not free", "Это время недоступно для записи"),
    "too_early": ("Too early for that", "Пока рано"),
    "too_late_to_reschedule": ("Too late to move the visit", "Перенести приём уже поздно"),
    "video_closed": ("The visit is over", "Приём закончился"),
    "video_not_open_yet": ("The room is not open yet", "Комната ещё не открыта"),
    "video_unavailable": ("Video is unavailable right now", "Видеосвязь сейчас недоступна"),
    "already_member": ("Already a member of this clinic", "Уже в команде этой клиники"),
    "not_on_duty_roster": ("The doctor does not take duty shifts", "Врач не берёт дежурства"),
    "invitation_expired": ("The invitation has expired; ask for a new one", "Срок приглашения истёк, попросите новое"),
    "invitation_closed": ("The invitation can no longer be used", "Приглашение больше нельзя использовать"),
    "invitation_limit": ("Too many invitations today; try tomorrow",
                         "Слишком много приглашений сегодня, попробуйте завтра"),
    "invalid_signature": ("The signature does not match", "Подпись не совпадает"),
    "invalid_event": ("Not an event we understand", "Непонятное событие"),
    "invalid_cursor": ("The cursor is not valid", "Курсор недействителен"),
    "feedback_given": ("This visit has its feedback already", "Отзыв об этом визите уже оставлен"),
    "internal_error": ("Something went wrong on our side", "Что-то пошло не так на нашей стороне"),
    # medical records
    "section_full": ("This section of the card is full", "Этот раздел медкарты заполнен"),
    "section_not_shared": ("The patient has not opened this section to you",
                           "Пациент не открыл вам этот раздел медкарты"),
    "visit_not_completed": ("A conclusion follows a completed visit", "Заключение пишется после завершённого приёма"),
    "conclusion_signed": ("A signed conclusion never changes; amend it",
                          "Подписанное заключение не меняется, оформите исправление"),
    "conclusion_not_signed": ("Sign the conclusion first", "Сначала подпишите заключение"),
    "precondition_failed": ("The record changed since you read it; reload it",
                            "Запись изменилась с момента чтения, обновите её"),
    "entry_kept": ("An entry a doctor wrote is kept for the legal period",
                   "Запись врача хранится установленный законом срок"),
    "upload_missing": ("Nothing was uploaded for this document yet", "Файл этого документа ещё не загружен"),
    "upload_mismatch": ("The uploaded file is not the one announced", "Загруженный файл не совпадает с заявленным"),
    # payments
    "payment_in_progress": ("A payment for this booking is being made; wait a moment",
                            "Оплата этой записи уже проводится, подождите немного"),
    "no_prepayment": ("This booking needs no prepayment", "Для этой записи предоплата не нужна"),
    "payment_changed": ("The payment changed meanwhile; look at it again",
                        "Платёж изменился, посмотрите на него ещё раз"),
    "busy": ("Someone else is changing this right now; try again in a moment",
             "Это сейчас меняет кто-то другой, повторите через мгновение"),
    "hold_lapsed": ("The time held for this booking has lapsed", "Время, удержанное для этой записи, истекло"),
    "already_paid": ("This booking is already paid", "Эта запись уже оплачена"),
    "refund_not_owed": ("This refund is not one to hand back at the reception",
                        "Этот возврат не выдаётся на ресепшене"),
    # cashback wallet
    "cashback_changed": ("Your cashback balance changed meanwhile; check it and pay again",
                         "Баланс кешбэка изменился, проверьте его и оплатите снова"),
}


# field error code -> (message en, message ru): the messages of ``errors[]`` that people read
FIELD_MESSAGES: dict[str, tuple[str, str]] = {
    "phone_format": ("Enter a mobile phone number", "Введите номер мобильного телефона"),
    "phone_invalid": ("This is not a valid phone number", "Такого номера телефона не существует"),
    "phone_extension": ("A mobile number has no extension", "У мобильного номера не бывает добавочного"),
    "phone_country_not_supported": ("We do not send SMS to numbers of this country",
                                    "Мы не отправляем SMS на номера этой страны"),
    "phone_not_mobile": ("This number cannot receive SMS; enter a mobile number",
                         "На этот номер нельзя отправить SMS, введите номер мобильного"),
    "password_too_short": ("Use at least 8 characters", "Пароль должен быть не короче 8 символов"),
    "password_too_long": ("Use at most 128 characters", "Пароль должен быть не длиннее 128 символов"),
    "password_common": ("This password is one of the most common ones; choose another",
                        "Это один из самых распространённых паролей, выберите другой"),
    "password_personal": ("Do not build the password from your phone number, name or birth date",
                          "Не составляйте пароль из номера телефона, имени или даты рождения"),
    "duplicate_key": ("This key is given more than once", "Этот ключ указан несколько раз"),
    "more_than_balance": ("This is more cashback than you have", "Это больше кешбэка, чем у вас есть"),
}


def field_message(code: str, lang: str, default: str) -> str:
    """The message of a field error in ``lang``, where one is written for its code."""
    if code not in FIELD_MESSAGES:
        return default
    en, ru = FIELD_MESSAGES[code]
    return ru if lang == "ru" else en


def title(code: str, lang: str) -> str:
    en, ru = TITLES.get(code, (code.replace("_", " ").capitalize(), code.replace("_", " ").capitalize()))
    return ru if lang == "ru" else en


def sms(kind: str, lang: str, **kw: str) -> str:
    """The text of an account SMS; the texts live with the SMS gateway (``chalicelib.core.sms``)."""
    from chalicelib.core.sms import text

    return text(kind, lang, **kw)
