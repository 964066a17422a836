"""The wallet under real concurrency on DynamoDB Local: two payments spending the same balance at the same
moment (exactly one wins, 50 times over), and the events of many visits delivered three times, shuffled,
from many threads at once (each counted once; the balance is always the sum of the entries)."""
from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib import bootstrap
from chalicelib.core import clock, db
from chalicelib.core.errors import AppError
from chalicelib.core.ids import new_id
from chalicelib.payments import wallet_store as store
from chalicelib.payments.wallet import Wallet
from tests.unit import wallet_world as ww

ROUNDS = 50


def test_two_spends_of_the_same_balance_one_wins_fifty_times(backend_env, fixed_clock, drain):
    cid = ww.clinic()
    outcomes = []
    for _ in range(ROUNDS):
        pid, bid = new_id(), new_id()
        ww.paid(new_id(), bid, pid, cid, 100_000)
        ww.completed(bid, pid, cid)
        drain()
        both_read = threading.Barrier(2)

        def pay(_: int, pid=pid, both_read=both_read) -> str:
            wallet = Wallet()  # two containers, each with its own read
            now = clock.now()
            seen = wallet.read(pid, cid, now)
            both_read.wait()
            try:
                ops = wallet.spend_ops(pid, cid, 8_000, new_id(), now, seen["version"])
                db.Tx().extend(ops).commit()  # payments' transaction (here with nothing else in it)
                return "paid"
            except db.TxCancelled as exc:
                assert exc.any("wallet:"), exc.failed
                return "cashback_changed"
            except AppError as exc:
                return exc.code

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = sorted(pool.map(pay, range(2)))
        outcomes.append(results)
        head = store.get_head(pid, cid)
        assert results == ["cashback_changed", "paid"], results
        assert head["balance"] == 2_000 == ww.entries_sum(pid, cid)
    assert len(outcomes) == ROUNDS


def test_a_storm_of_payment_and_visit_events_counts_each_once(backend_env, fixed_clock, drain):
    cid, pid = ww.clinic(), new_id()
    outbox = bootstrap.outbox()
    ww.paid(new_id(), new_id(), pid, cid, 1)  # a head to spend from later
    visits = []
    for i in range(20):
        bid, pay = new_id(), new_id()
        visits.append((bid, pay, 10_000 * (i + 1)))
    events = []
    for bid, pay, amount in visits:
        events.append(("payment.succeeded", {"payment_id": pay, "booking_id": bid, "patient_id": pid,
                                             "clinic_id": cid, "doctor_id": new_id(), "amount": amount,
                                             "currency": "RUB", "method": "card", "cashback_spent": 0}))
        events.append(("payment.refunded", {"payment_id": pay, "refund_id": new_id(), "booking_id": bid,
                                            "patient_id": pid, "clinic_id": cid, "amount": amount // 2,
                                            "refunded_total": amount // 2, "paid_amount": amount,
                                            "currency": "RUB", "reason": "partial"}))
        events.append(("booking.completed", {"booking_id": bid, "status": "completed", "patient_id": pid,
                                             "clinic_id": cid, "doctor_id": new_id()}))
    from chalicelib.core.events import event_item

    # each event as the outbox stores it (its id, its time), delivered three times: at-least-once, as in AWS
    deliveries = [event_item(kind, data) for kind, data in events] * 3
    random.Random(11).shuffle(deliveries)

    def deliver(event) -> None:
        for _, fn in outbox.handlers[event["kind"]]:
            fn(event)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(deliver, deliveries))
    expected = sum((amount - amount // 2) // 10 for _, _, amount in visits)
    assert bootstrap.wallet().read(pid, cid, clock.now())["balance"] == expected
    assert ww.entries_sum(pid, cid) == expected
    earns = [e for e in store.all_entries(pid, cid) if e["kind"] == "earn"]
    assert len(earns) == 20  # one lot per visit, never a second
    drain()
    assert store.get_clinic_total(cid)["outstanding"] == expected
