"""The wallet follows payments and visits through events: delivered twice, or in any order, each counts
once; cashback is earned on completion on what was paid (never on a refunded prepayment); spent cashback
comes back; lots expire oldest first, before and after the job."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.core import clock, db, events
from chalicelib.core.ids import new_id
from chalicelib.payments import wallet_store as store
from tests.unit import wallet_world as ww


def balance(pid, cid):
    return bootstrap.wallet().read(pid, cid, clock.now())["balance"]


def deliver_twice(drain):
    """Every pending event's handlers run twice (as after a consumer that died before recording success),
    then the outbox drains as usual, and a copy of each event under a new id is delivered too."""
    outbox = bootstrap.outbox()
    pending = outbox.due(clock.now() + timedelta(days=1), 100)
    for event in pending:
        for _, fn in outbox.handlers.get(event["kind"], []):
            fn(event)
            fn(event)
    drain()
    for event in pending:  # the same facts again, as a second event (a webhook storm's duplicate)
        ww.raise_event(event["kind"], event["data"])
    drain()


ORDERS = list(itertools.permutations(["paid", "refunded", "completed"]))


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_any_order_twice_earns_on_what_was_kept(backend_env, fixed_clock, drain, order):
    cid, pid, bid, pay = ww.clinic(), new_id(), new_id(), new_id()
    steps = {"paid": lambda: ww.paid(pay, bid, pid, cid, 100_000),
             "refunded": lambda: ww.refunded(pay, bid, pid, cid, 40_000, 40_000, 100_000),
             "completed": lambda: ww.completed(bid, pid, cid)}
    for step in order:
        steps[step]()
        deliver_twice(drain)
    assert balance(pid, cid) == 6_000  # 10 % of the 60,000 kept, whatever came first
    assert ww.entries_sum(pid, cid) == 6_000
    total = store.get_clinic_total(cid)
    assert total["outstanding"] == 6_000


def test_a_refunded_prepayment_never_leaves_cashback(backend_env, fixed_clock, drain):
    cid, pid, bid, pay = ww.clinic(), new_id(), new_id(), new_id()
    ww.paid(pay, bid, pid, cid, 50_000)
    drain()
    assert balance(pid, cid) == 0  # paid, not yet visited: nothing earned
    ww.refunded(pay, bid, pid, cid, 50_000, 50_000, 50_000)
    drain()
    ww.completed(bid, pid, cid)  # even if the visit were then marked
    drain()
    assert balance(pid, cid) == 0 and store.all_entries(pid, cid) == []


def test_a_payment_at_the_desk_after_the_visit_earns_too_and_the_cap_holds(backend_env, fixed_clock, drain):
    cid = ww.clinic(cashback_percent=10, cashback_cap={"amount": 8_000, "currency": "RUB"})
    pid, bid = new_id(), new_id()
    ww.paid(new_id(), bid, pid, cid, 50_000)
    ww.completed(bid, pid, cid)
    drain()
    assert balance(pid, cid) == 5_000
    ww.paid(new_id(), bid, pid, cid, 50_000, method="cash")  # the rest paid at reception afterwards
    drain()
    assert balance(pid, cid) == 8_000  # 10 % of 100,000 is 10,000; the clinic's cap is 8,000 a visit
    kinds = [e["kind"] for e in store.all_entries(pid, cid)]
    assert kinds == ["earn", "earn"]


def test_a_clinic_that_turned_cashback_off_gives_none(backend_env, fixed_clock, drain):
    cid, pid, bid = ww.clinic(cashback_percent=0), new_id(), new_id()
    ww.paid(new_id(), bid, pid, cid, 100_000)
    ww.completed(bid, pid, cid)
    drain()
    assert balance(pid, cid) == 0 and store.get_head(pid, cid) is None


def test_a_refund_after_spending_reverses_what_it_can_and_never_goes_below_zero(backend_env, fixed_clock, drain):
    cid, pid, bid, pay = ww.clinic(), new_id(), new_id(), new_id()
    ww.paid(pay, bid, pid, cid, 100_000)
    ww.completed(bid, pid, cid)
    drain()
    ww.spend(pid, cid, 9_000, clock.now())  # spent on another visit that went ahead
    drain()
    ww.refunded(pay, bid, pid, cid, 100_000, 100_000, 100_000)  # the first visit refunded in full afterwards
    deliver_twice(drain)
    assert balance(pid, cid) == 0  # 1,000 was left to reverse; the other 9,000 is written off, not a debt
    assert ww.entries_sum(pid, cid) == 0
    base = store.get_base(bid)
    assert base["held"] == 9_000 and base["written_off"] == 9_000
    ww.paid(new_id(), new_id(), pid, cid, 10_000)  # later visits earn as usual
    assert store.get_clinic_total(cid)["outstanding"] == 0


def test_spent_cashback_comes_back_once_when_released_or_refunded(backend_env, fixed_clock, drain):
    cid, pid, bid = ww.clinic(), new_id(), new_id()
    ww.paid(new_id(), bid, pid, cid, 100_000)
    ww.completed(bid, pid, cid)
    drain()
    held = ww.spend(pid, cid, 4_000, clock.now())  # a payment that reserved cashback, then its hold lapsed
    paid = ww.spend(pid, cid, 2_000, clock.now())  # another that was paid, then half refunded
    drain()
    assert balance(pid, cid) == 4_000
    ww.released(held, pid, cid, 4_000)
    ww.refunded(paid, new_id(), pid, cid, 9_000, 9_000, 18_000)
    deliver_twice(drain)
    assert balance(pid, cid) == 4_000 + 4_000 + 1_000
    ww.refunded(paid, new_id(), pid, cid, 9_000, 18_000, 18_000)  # the rest refunded too
    deliver_twice(drain)
    assert balance(pid, cid) == 10_000
    assert [e["kind"] for e in store.all_entries(pid, cid)] == ["earn", "spend", "spend", "return", "return",
                                                                "return"]
    total = store.get_clinic_total(cid)
    assert (total["earned"], total["spent"], total["returned"], total["outstanding"]) == (10_000, 6_000, 6_000,
                                                                                          10_000)


def test_lots_expire_oldest_first_and_never_count_once_past_their_date(backend_env, fixed_clock, drain):
    cid, pid = ww.clinic(cashback_expiry_days=30), new_id()
    for days in (0, 10, 20):  # three visits, ten days apart: three lots
        bid = new_id()
        ww.paid(new_id(), bid, pid, cid, 1_000 * (days + 10))
        ww.completed(bid, pid, cid)
        drain()
        fixed_clock.advance(days=10)
    assert balance(pid, cid) == 2_000 + 3_000  # day 30 now: the first lot (valid until day 30) has passed
    fixed_clock.advance(days=-1)
    assert balance(pid, cid) == 1_000 + 2_000 + 3_000
    ww.spend(pid, cid, 1_500, clock.now())  # day 29: the first lot (1,000) goes first, then 500 of the second
    drain()
    fixed_clock.advance(days=12)  # day 41: the second lot (1,500 left) has passed too, before any job ran
    w = bootstrap.wallet()
    assert balance(pid, cid) == 3_000
    assert [lot["amount"] for lot in w.read(pid, cid, clock.now())["lots"]] == [3_000]
    assert w.expire_due(clock.now()) == {"wallets": 1, "lots": 1}
    assert w.expire_due(clock.now()) == {"wallets": 0, "lots": 0}  # nothing is due twice
    expired = [e for e in store.all_entries(pid, cid) if e["kind"] == "expire"]
    assert [(e["amount"], e["at"][:10]) for e in expired] == [(-1_500, "2027-01-03")]
    assert ww.entries_sum(pid, cid) == 3_000 == balance(pid, cid)
    fixed_clock.advance(days=30)
    w.expire_due(clock.now())
    head = store.get_head(pid, cid)
    assert head["balance"] == 0 and "GSI2PK" not in head  # an empty wallet leaves the due index
    assert store.get_clinic_total(cid)["outstanding"] == 0


def test_the_expiry_job_reads_only_due_wallets(backend_env, fixed_clock, drain, ddb_calls):
    cid = ww.clinic(cashback_expiry_days=365)
    soon = ww.clinic(cashback_expiry_days=1)
    for c in [cid] * 120 + [soon] * 3:
        pid, bid = new_id(), new_id()
        ww.paid(new_id(), bid, pid, c, 10_000)
        ww.completed(bid, pid, c)
    drain()
    fixed_clock.advance(days=2)
    ddb_calls.reset()
    assert bootstrap.wallet().expire_due(clock.now()) == {"wallets": 3, "lots": 3}
    # 8 shard queries, and per due wallet: one read, one transaction, one read that finds nothing left
    assert ddb_calls.count == 8 + 3 * 3, ddb_calls.calls


def test_an_event_that_names_another_patients_visit_changes_nothing(backend_env, fixed_clock, drain):
    cid, pid, bid = ww.clinic(), new_id(), new_id()
    ww.paid(new_id(), bid, pid, cid, 100_000)
    drain()
    ww.completed(bid, new_id(), cid)  # a forged or broken event: same visit, another patient
    drain()
    assert balance(pid, cid) == 0
    assert events.dead_letters() == [] and db.get(*store.base_key(bid))["completed"] is False


def test_every_wallet_movement_reaches_the_clinics_figures(backend_env, fixed_clock, drain):
    """The wallet's own movements as events in their transactions: analytics' outstanding cashback (the
    clinic's liability on the dashboard) equals the wallet's, through earn, spend, return, reversal and
    expiry, each event delivered twice (and a copy under a new id: counted once)."""
    from chalicelib.analytics import store as analytics_store

    cid, pid = ww.clinic(cashback_expiry_days=30), new_id()
    first, second = new_id(), new_id()
    ww.paid(f1 := new_id(), first, pid, cid, 100_000)
    ww.completed(first, pid, cid)  # earns 10,000
    deliver_twice(drain)
    used = ww.spend(pid, cid, 4_000, clock.now())
    deliver_twice(drain)
    ww.released(used, pid, cid, 4_000)  # its hold lapsed: 4,000 back
    ww.paid(new_id(), second, pid, cid, 20_000)
    ww.completed(second, pid, cid)  # earns 2,000
    ww.refunded(f1, first, pid, cid, 50_000, 50_000, 100_000)  # half of the first refunded: 5,000 reversed
    deliver_twice(drain)
    fixed_clock.advance(days=31)
    assert bootstrap.wallet().expire_due(clock.now())["lots"] >= 1  # what is left expires
    deliver_twice(drain)
    wallet_total = store.get_clinic_total(cid)
    figures = analytics_store.total(cid)

    assert wallet_total["outstanding"] == 0 == int(figures.get("cb_out|RUB", 0))
    days = analytics_store.days(cid, "2026-01-01", "2027-12-31")
    summed = {k: sum(int(d.get(f"c|cb_{k}|RUB", 0)) for d in days) for k in ("earned", "spent", "expired")}
    assert summed == {"earned": 10_000 + 2_000 - 5_000, "spent": 0, "expired": 7_000}, summed
