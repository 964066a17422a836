"""Real concurrency against DynamoDB Local: invariants hold in the database,
not in Python. Threads call the service layer directly (one Lambda container
serves one request at a time; many containers run in parallel)."""
from concurrent.futures import ThreadPoolExecutor

from chalicelib.bootstrap import identity as service
from chalicelib.core import aws
from chalicelib.core.errors import AppError
from chalicelib.identity import models as m
from tests.conftest import PASSWORD, signup_payload

PHONE = "+79161230000"
N = 8


def run_parallel(fn, n=N):
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
    results = []
    for f in futures:
        try:
            results.append(("ok", f.result()))
        except AppError as exc:
            results.append((exc.code, None))
    return results


def users_in(env):
    items = aws.client("dynamodb").scan(TableName=env["TABLE_NAME"])["Items"]
    return [i for i in items if i["type"]["S"] == "user"]


def test_parallel_sign_ups_for_one_phone_send_one_sms(backend_env, fixed_clock, outbox):
    svc = service()
    results = run_parallel(lambda i: svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), f"10.0.0.{i}"))
    assert [r[0] for r in results].count("ok") == 1
    assert {r[0] for r in results} == {"ok", "resend_too_soon"}
    assert len(outbox.to(PHONE)) == 1


def test_parallel_verifications_of_one_code_create_one_account(backend_env, fixed_clock, outbox):
    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), "10.0.0.1")
    code = outbox.last_code(PHONE)
    results = run_parallel(lambda i: svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=code)))
    assert [r[0] for r in results].count("ok") == 1
    assert len(users_in(backend_env)) == 1


def test_parallel_refreshes_with_one_token_never_yield_two_live_tokens(backend_env, fixed_clock, outbox):
    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), "10.0.0.1")
    pair = svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=outbox.last_code(PHONE)))
    results = run_parallel(lambda i: svc.refresh(m.RefreshRequest(refresh_token=pair.refresh_token)))
    winners = [r[1] for r in results if r[0] == "ok"]
    assert len(winners) <= 1
    assert all(code in ("ok", "refresh_invalid") for code, _ in results)
    if len(results) - len(winners) > 0 and winners:
        # The losers replayed a used token: the family is revoked, the winner's token with it.
        try:
            svc.refresh(m.RefreshRequest(refresh_token=winners[0].refresh_token))
            survived = True
        except AppError:
            survived = False
        assert not survived


def test_parallel_wrong_guesses_never_exceed_five_tries(backend_env, fixed_clock, outbox):
    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), "10.0.0.1")
    code = outbox.last_code(PHONE)
    guesses = [f"{(int(code) + k) % 1_000_000:06d}" for k in range(1, 21)]
    results = run_parallel(
        lambda i: svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=guesses[i])), n=20)
    codes = [r[0] for r in results]
    assert codes.count("invalid_code") == 5
    assert set(codes) == {"invalid_code", "too_many_attempts"}


def _wrong_password(svc):
    try:
        svc.login(m.LoginRequest(phone=PHONE, password="wrong guess"), "10.0.0.2")
        return "ok"
    except AppError as exc:
        return exc.code


def test_parallel_wrong_passwords_are_all_counted(backend_env, fixed_clock, outbox):
    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), "10.0.0.1")
    svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=outbox.last_code(PHONE)))
    # 8 parallel wrong guesses, under the limit of 10 a quarter hour: each is answered 401 and counted...
    results = run_parallel(lambda i: _wrong_password(svc), n=8)
    assert [r[1] for r in results] == ["invalid_credentials"] * 8
    # ...so exactly two more fit before the account is throttled, even for the right password.
    assert [_wrong_password(svc) for _ in range(3)] == ["invalid_credentials"] * 2 + ["login_throttled"]
    try:
        svc.login(m.LoginRequest(phone=PHONE, password=PASSWORD), "10.0.0.2")
        throttled = False
    except AppError as exc:
        throttled = exc.code == "login_throttled"
    assert throttled


def test_sixteen_parallel_wrong_passwords_get_exactly_the_ten_allowed_tries(backend_env, fixed_clock, outbox):
    svc = service()
    ch = svc.sign_up(m.SignUpRequest(**signup_payload(PHONE)), "10.0.0.1")
    svc.verify_sign_up(m.VerifySignUpRequest(challenge_id=ch.challenge_id, code=outbox.last_code(PHONE)))
    codes = [r[1] for r in run_parallel(lambda i: _wrong_password(svc), n=16)]
    assert codes.count("invalid_credentials") == 10
    assert codes.count("login_throttled") == 6
