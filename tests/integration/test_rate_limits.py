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
