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
    "internal_error": ("Something went wrong on our side", "Что-то пошло не так на нашей стороне"),
}


def title(code: str, lang: str) -> str:
    en, ru = TITLES.get(code, (code.replace("_", " ").capitalize(), code.replace("_", " ").capitalize()))
    return ru if lang == "ru" else en


SMS: dict[str, tuple[str, str]] = {
    "signup": ("Your sign-up code: {code}. Valid 5 minutes. Do not share it.",
               "Код для регистрации: {code}. Действует 5 минут. Никому не сообщайте его."),
    "signup_exists": ("Someone tried to sign up with your number. If it was you, sign in instead; nothing has changed.",
                      "Кто-то пытался зарегистрироваться с вашим номером. "
                      "Если это были вы, просто войдите; ничего не изменилось."),
    "login": ("Your sign-in code: {code}. Valid 5 minutes. Do not share it.",
              "Код для входа: {code}. Действует 5 минут. Никому не сообщайте его."),
    "step_up": ("Your confirmation code: {code}. Valid 5 minutes. Do not share it.",
                "Код подтверждения: {code}. Действует 5 минут. Никому не сообщайте его."),
    "phone_change": ("Code to link this number to your account: {code}. Valid 5 minutes.",
                     "Код для привязки этого номера к учётной записи: {code}. Действует 5 минут."),
    "password_reset": ("Your password reset code: {code}. Valid 5 minutes. Do not share it.",
                       "Код для сброса пароля: {code}. Действует 5 минут. Никому не сообщайте его."),
}


def sms(kind: str, lang: str, **kw: str) -> str:
    en, ru = SMS[kind]
    return (ru if lang == "ru" else en).format(**kw)
