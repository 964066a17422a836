"""Payments under real concurrency, against DynamoDB Local: Stripe's at-least-once, any-order webhooks, and
refunds asked for at the same moment."""
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import bootstrap
from chalicelib.booking import models as bm
from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from chalicelib.payments import models as m
from chalicelib.payments import store
from tests.unit.clinic_setup import ok
from tests.unit.test_payments_setup import berlin, booking_status, events_of, jpost

N = 50
DAYS = ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]


@pytest.fixture
def w(client, outbox, fixed_clock, fake_stripe):
    w = berlin(client, outbox, fixed_clock, fake_stripe)
    for day in ("tue", "wed", "thu", "fri"):
        ok(jpost(client, f"/clinics/{w['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
                 {"branch_id": w["branch_id"], "modality": "in_person", "weekday": day, "start": "08:00",
                  "end": "16:00"}, token=w["admin"]["token"]), 201)
    return w


def holds(client, w, n):
    from tests.unit.test_payments_setup import free_starts

    starts = [s for d in DAYS for s in free_starts(client, w, d)][:n]
    assert len(starts) == n
    me = Caller(user_id=w["patient"]["user_id"], role="patient", session_id="s")
    out = []
    for s in starts:
        b, _ = bootstrap.booking().book(me, bm.BookingIn(clinic_id=w["clinic_id"], service_id=w["service_id"],
                                                         doctor_id=w["doctor"]["user_id"], start=s), None)
        out.append(b["booking_id"])
    return me, out


def storm(events, times=3, workers=8):
    """Deliver every event ``times`` times, shuffled, from ``workers`` threads; like Stripe, redeliver whatever
    was not answered 2xx until it is. Returns how many deliveries were answered with a retry."""
    queue = [e for e in events for _ in range(times)]
    random.Random(7).shuffle(queue)
    retried = 0
    svc = bootstrap.clinics()
    while queue:
        failed = []
        lock = threading.Lock()

        def one(e):
            try:
                svc.handle_stripe_event(e)
            except AppError as exc:
                assert exc.status in (409, 503), exc.code
                with lock:
                    failed.append(e)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, queue))
        retried += len(failed)
        queue = failed
    return retried


def test_webhook_storm_confirms_and_refunds_each_payment_exactly_once(client, w, fake_stripe, drain):
    me, bids = holds(client, w, N)
    payments = bootstrap.payments()
    sheets = [payments.create_intent(me, bid, 0) for bid in bids]
    for s in sheets:
        fake_stripe.payments.confirm(s["client_secret"].split("_secret_")[0])
    paid_events = list(fake_stripe.payments.events)
    storm(paid_events)
    assert all(booking_status(b) == "confirmed" for b in bids)
    assert len(events_of("booking.paid")) == N and len(events_of("payment.succeeded")) == N
    assert not events_of("payment.refund_requested")  # no money came for a visit that is not there

    admin = Caller(user_id=w["admin"]["user_id"], role="clinic_admin", session_id="s", mfa="totp")
    for s in sheets:
        payments.refund(admin, w["clinic_id"], s["payment_id"], m.RefundIn(amount=1000, reason="goodwill"), None)
    n = len(fake_stripe.payments.events)
    drain()
    refund_events = fake_stripe.payments.events[n:]
    assert len(refund_events) == 2 * N  # charge.refunded + refund.updated per refund
    storm(refund_events + paid_events)  # and the old payment events once more, late
    assert len(events_of("payment.refunded")) == N
    assert sum(c["amount_refunded"] for c in fake_stripe.payments.charges.values()) == N * 1000
    for s in sheets:
        p = store.get_payment(s["payment_id"])
        assert p["refunded_total"] == 1000 and p["status"] == "succeeded"
        assert [r["status"] for r in store.get_refunds(s["payment_id"])] == ["succeeded"]


def test_concurrent_refunds_never_pass_what_was_paid(client, w, fake_stripe, drain):
    me, [bid] = holds(client, w, 1)
    payments = bootstrap.payments()
    sheet = payments.create_intent(me, bid, 0)
    fake_stripe.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    storm(fake_stripe.payments.events, times=1)
    admin = Caller(user_id=w["admin"]["user_id"], role="clinic_admin", session_id="s", mfa="totp")
    outcomes = []

    def one(i):
        try:
            payments.refund(admin, w["clinic_id"], sheet["payment_id"], m.RefundIn(amount=1000, reason=f"reason {i}"),
                            None)
            return "ok"
        except AppError as exc:
            return exc.code

    for _ in range(3):  # rounds of 8 at once until nothing is left to refund
        with ThreadPoolExecutor(8) as pool:
            outcomes += list(pool.map(one, range(8)))
    drain()
    p = store.get_payment(sheet["payment_id"])
    refunds = store.get_refunds(sheet["payment_id"])
    assert outcomes.count("ok") == len(refunds) == 3  # 3 x 1000 of 3600; a fourth would pass what was paid
    assert p["refunded_total"] == 3000
    assert set(outcomes) <= {"ok", "payment_changed", "exceeds_paid", "validation_failed"}
    charge = next(iter(fake_stripe.payments.charges.values()))
    assert charge["amount_refunded"] == 3000


def test_policy_and_staff_refunds_of_a_booking_paid_twice_race_and_never_pass_what_was_paid(
        client, w, fake_stripe, drain):
    """A booking paid online (36,00) and at the desk (84,00) is cancelled in time: the policy handler runs twice
    at once (the outbox delivers at least once) while staff refund both payments from several screens."""
    me, [bid] = holds(client, w, 1)
    payments = bootstrap.payments()
    sheet = payments.create_intent(me, bid, 0)
    fake_stripe.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    storm(fake_stripe.payments.events, times=1)
    admin = Caller(user_id=w["admin"]["user_id"], role="clinic_admin", session_id="s", mfa="totp")
    desk = payments.record_reception(admin, w["clinic_id"], m.ReceptionIn(
        booking_id=bid, method="cash", amount={"amount": 8400, "currency": "EUR"}))
    bootstrap.booking().cancel(me, bid, bm.CancelIn())
    [cancelled] = events_of("booking.cancelled")
    outcomes = []

    def policy(_):
        for _ in range(20):  # as the outbox retries a handler that answered busy
            try:
                payments.refund_by_policy(cancelled)
                return "policy"
            except AppError as exc:
                assert exc.code == "busy", exc.code
        return "policy gave up"

    def by_staff(i):
        pid = (sheet["payment_id"], desk["payment_id"])[i % 2]
        try:
            payments.refund(admin, w["clinic_id"], pid, m.RefundIn(amount=2000, reason=f"screen {i}"), None)
            return "ok"
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: policy(i) if i < 2 else by_staff(i), range(10)))
    assert outcomes[:2] == ["policy", "policy"]
    assert set(outcomes[2:]) <= {"ok", "payment_changed", "exceeds_paid", "validation_failed"}
    n = len(fake_stripe.payments.events)
    drain()
    storm(fake_stripe.payments.events[n:])
    drain()
    payments.refund_by_policy(cancelled)  # and once more, late: nothing left to give back
    total = 0
    for pid, paid in ((sheet["payment_id"], 3600), (desk["payment_id"], 8400)):
        p = store.get_payment(pid)
        kept = [r for r in store.get_refunds(pid) if r["status"] != "failed"]
        assert p["refunded_total"] == sum(int(r["amount"]) for r in kept) <= paid
        total += p["refunded_total"]
    assert total == 12000  # cancelled in time: everything back, never more
    charge = next(iter(fake_stripe.payments.charges.values()))
    assert charge["amount_refunded"] == 3600
    owed = [r for r in store.get_refunds(desk["payment_id"]) if r["status"] == "owed_at_reception"]
    assert owed and all(r["by"] == "policy" for r in owed)
