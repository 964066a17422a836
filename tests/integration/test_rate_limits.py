"""Sending limits under real concurrency against DynamoDB Local: parallel requests from one network
address are each counted once, and none is refused while the limit still has room."""
from concurrent.futures import ThreadPoolExecutor

from chalicelib.bootstrap import identity as service
from chalicelib.core.errors import AppError
from chalicelib.identity import models as m
from tests.conftest import signup_payload

ADDRESS = "203.0.113.7"


def parallel_sign_ups(n, first=0):
    svc = service()

    def one(i):
        try:
            svc.sign_up(m.SignUpRequest(**signup_payload(f"+7916333{first + i:04d}")), ADDRESS)
            return "ok"
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_ten_parallel_sign_ups_from_one_address_under_a_limit_of_twenty_all_go_through(backend_env, fixed_clock,
                                                                                         outbox):
    assert parallel_sign_ups(10) == ["ok"] * 10
    assert len(outbox.all()) == 10
    # all ten were counted: exactly ten more fit in this hour
    results = parallel_sign_ups(12, first=100)
    assert sorted(results) == ["client_sms_limit"] * 2 + ["ok"] * 10
    assert len(outbox.all()) == 20


def test_thirty_parallel_sign_ups_from_one_address_send_exactly_twenty(backend_env, fixed_clock, outbox):
    results = parallel_sign_ups(30)
    assert results.count("ok") == 20 and results.count("client_sms_limit") == 10
    assert len(outbox.all()) == 20


# ------------------------------------------------------------------ second factors and sign-in, in parallel

def _totp_account(phone, fixed_clock, outbox):
    import pyotp

    from chalicelib.identity import store

    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(phone)), ADDRESS)
    svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=outbox.last_code(phone)))
    uid = store.user_id_for_phone(phone)
    secret = pyotp.random_base32()
    user = store.get_user(uid)
    store.update_user(uid, {"mfa_method": "totp", "totp_secret": secret}, user["version"])
    return secret


def test_parallel_wrong_codes_across_many_challenges_never_exceed_the_accounts_budget(backend_env, fixed_clock,
                                                                                        outbox, monkeypatch):
    """Twelve challenges allow 60 tries by their own counters; the account allows 20 consecutive
    failures (here, so the test stays small; 100 in production): 60 parallel wrong codes spend exactly 20."""
    import pyotp

    from chalicelib.core.settings import reset_settings
    from tests.conftest import reset_process_state

    monkeypatch.setenv("SECOND_FACTOR_MAX_FAILURES", "20")
    monkeypatch.setenv("SECOND_FACTOR_FREE_FAILURES", "100")  # no delay in between: only the ceiling counts
    reset_settings()
    reset_process_state()
    phone = "+79163334455"
    secret = _totp_account(phone, fixed_clock, outbox)
    svc = service()
    challenges = [svc.login(m.LoginRequest(phone=phone, password="correct horse battery"), ADDRESS).challenge_id
                  for _ in range(12)]
    good = pyotp.TOTP(secret).at(fixed_clock.now())
    bad = "000000" if good != "000000" else "111111"

    def one(i):
        try:
            svc.verify_login(m.VerifyLoginRequest(challenge_id=challenges[i % 12], code=bad))
            return "ok"
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(60)))
    assert results.count("invalid_code") == 20, results
    assert results.count("second_factor_locked") == 40
    # the right code on a fresh challenge: locked, the account needs recovery
    ch = svc.login(m.LoginRequest(phone=phone, password="correct horse battery"), ADDRESS)
    try:
        svc.verify_login(m.VerifyLoginRequest(challenge_id=ch.challenge_id, code=good))
        outcome = "ok"
    except AppError as exc:
        outcome = exc.code
    assert outcome == "second_factor_locked"


def test_parallel_wrong_passwords_from_many_addresses_fill_the_accounts_counter_exactly(backend_env, fixed_clock,
                                                                                         outbox):
    """40 wrong passwords a quarter hour per account from unseen clients, counted before each password
    check: 60 parallel guesses from 6 addresses (10 each, the per-address-and-account limit) spend 40."""
    svc = service()
    phone = "+79163334466"
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(phone)), ADDRESS)
    svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=outbox.last_code(phone)))

    def one(i):
        try:
            svc.login(m.LoginRequest(phone=phone, password=f"guess {i}"), f"198.51.100.{i % 6}")
            return "ok"
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(60)))
    assert results.count("invalid_credentials") == 40, results
    assert results.count("login_throttled") == 20
