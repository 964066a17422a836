"""The ledger under any order of earn, spend, refund, release and expire (hypothesis, stateful), against
the real store (moto): the balance is always the sum of the entries and of the lots, never below zero, an
expired lot never counts, and spending takes the oldest lots first."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib import bootstrap
from chalicelib.core import clock
from chalicelib.core.errors import AppError
from chalicelib.core.ids import new_id
from chalicelib.payments import ledger
from chalicelib.payments import wallet_store as store
from tests.unit import wallet_world as ww


def _check_oldest_first(entry: dict, head_after: dict, now_iso: str) -> None:
    """Every lot a spend left untouched is no older than the last lot it took from."""
    taken = entry["lots"]
    assert [(t["valid_until"], t["lot_id"]) for t in taken] == sorted((t["valid_until"], t["lot_id"]) for t in taken)
    last = (taken[-1]["valid_until"], taken[-1]["lot_id"])
    touched = {t["lot_id"] for t in taken}
    for lot_id, lot in (head_after.get("lots") or {}).items():
        if lot_id not in touched and ledger.is_live(lot, now_iso):
            assert (lot["valid_until"], lot_id) > last, (lot_id, lot, taken)


class LedgerMachine(RuleBasedStateMachine):
    drain = None

    @initialize(percent=st.sampled_from([0, 5, 10, 30]), expiry=st.sampled_from([1, 10, 365]))
    def start(self, percent, expiry):
        # each example on an empty table of its own: what one example wrote never shapes another, and moto's
        # index queries (the expiry job's) sort only this example's items
        from chalicelib.core import aws, db
        from chalicelib.core.table import ensure_table

        ddb = aws.client("dynamodb")
        ddb.delete_table(TableName=db.table_name())
        ensure_table(ddb, db.table_name())
        self.cid = ww.clinic(cashback_percent=percent, cashback_expiry_days=expiry)
        self.pid = new_id()
        self.visits: list[dict] = []   # {bid, payments: [(payment_id, amount, refunded)], completed}
        self.spends: list[dict] = []   # {payment_id, amount, released}
        self.w = bootstrap.wallet()

    def _now(self):
        return clock.now()

    @rule(amount=st.integers(min_value=1, max_value=500_000), complete=st.booleans())
    def pay_for_a_visit(self, amount, complete):
        bid, pay = new_id(), new_id()
        ww.paid(pay, bid, self.pid, self.cid, amount)
        self.visits.append({"bid": bid, "payments": [[pay, amount, 0]], "completed": False})
        if complete:
            ww.completed(bid, self.pid, self.cid)
            self.visits[-1]["completed"] = True
        LedgerMachine.drain()

    @precondition(lambda self: any(not v["completed"] for v in self.visits))
    @rule(data=st.data())
    def complete_a_visit(self, data):
        v = data.draw(st.sampled_from([v for v in self.visits if not v["completed"]]))
        ww.completed(v["bid"], self.pid, self.cid)
        v["completed"] = True
        LedgerMachine.drain()

    @precondition(lambda self: bool(self.visits))
    @rule(data=st.data(), share=st.integers(min_value=1, max_value=100))
    def refund_part_of_a_payment(self, data, share):
        v = data.draw(st.sampled_from(self.visits))
        p = v["payments"][0]
        if p[2] >= p[1]:
            return
        part = max(1, (p[1] - p[2]) * share // 100)
        p[2] += part
        ww.refunded(p[0], v["bid"], self.pid, self.cid, part, p[2], p[1])
        LedgerMachine.drain()

    @rule(share=st.integers(min_value=1, max_value=100))
    def spend(self, share):
        now = self._now()
        seen = self.w.read(self.pid, self.cid, now)
        amount = max(1, seen["balance"] * share // 100)
        payment_id = new_id()
        try:
            ww.spend(self.pid, self.cid, amount, now, payment_id)
        except AppError as e:
            assert seen["balance"] < amount and e.status == 422 and e.errors[0].field == "cashback_spend"
            return
        assert seen["balance"] >= amount
        entry = max(store.all_entries(self.pid, self.cid), key=lambda e: e["entry_id"])
        assert entry["kind"] == "spend" and -entry["amount"] == amount
        _check_oldest_first(entry, store.get_head(self.pid, self.cid), ledger.iso(now))
        after = self.w.read(self.pid, self.cid, now)["balance"]
        assert after == seen["balance"] - amount
        self.spends.append({"payment_id": payment_id, "amount": amount, "ended": False})
        LedgerMachine.drain()

    @precondition(lambda self: any(not s["ended"] for s in self.spends))
    @rule(data=st.data(), how=st.sampled_from(["release", "refund_all", "refund_half"]))
    def end_a_payment_that_spent(self, data, how):
        s = data.draw(st.sampled_from([s for s in self.spends if not s["ended"]]))
        before = self.w.read(self.pid, self.cid, self._now())["balance"]
        if how == "release":
            ww.released(s["payment_id"], self.pid, self.cid, s["amount"])
            back = s["amount"]
        else:  # a payment of 2000 of which the cashback paid s["amount"] on top
            total = 2000 if how == "refund_all" else 1000
            ww.refunded(s["payment_id"], None, self.pid, self.cid, total, total, 2000)
            back = s["amount"] if how == "refund_all" else s["amount"] * 1000 // 2000
        s["ended"] = True
        LedgerMachine.drain()
        # what came back is in the balance (into its lot, or a new one if its lot's date has passed)
        assert self.w.read(self.pid, self.cid, self._now())["balance"] == before + back

    @rule(days=st.integers(min_value=0, max_value=400), run_job=st.booleans())
    def time_passes(self, days, run_job):
        clock.get_clock().advance(days=days, hours=1)
        if run_job:
            self.w.expire_due(self._now())
            head = store.get_head(self.pid, self.cid)
            if head:
                assert ledger.due(head.get("lots") or {}, ledger.iso(self._now())) == []

    @invariant()
    def balance_is_the_sum_of_the_entries_and_never_negative(self):
        if not hasattr(self, "pid"):
            return
        head = store.get_head(self.pid, self.cid)
        if head is None:
            assert ww.entries_sum(self.pid, self.cid) == 0
            return
        lots = head.get("lots") or {}
        assert int(head["balance"]) == ww.entries_sum(self.pid, self.cid) == ledger.total(lots) >= 0
        assert all(int(lot["amount"]) > 0 for lot in lots.values())
        now_iso = ledger.iso(self._now())
        seen = self.w.read(self.pid, self.cid, self._now())
        assert seen["balance"] == sum(int(v["amount"]) for v in lots.values() if v["valid_until"] > now_iso) >= 0


def test_the_ledger_holds_its_rules_in_any_order(backend_env, fixed_clock, drain):
    LedgerMachine.drain = staticmethod(drain)
    LedgerMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=12, deadline=None,
                                               suppress_health_check=list(HealthCheck))
    run_state_machine_as_test(LedgerMachine, settings=LedgerMachine.TestCase.settings)


@pytest.mark.parametrize("case", ["draw", "return"])
def test_lots_arithmetic_by_example(case):
    lots = {"A": {"amount": 300, "valid_until": "2027-01-01T00:00:00Z"},
            "B": {"amount": 500, "valid_until": "2026-12-01T00:00:00Z"},
            "C": {"amount": 200, "valid_until": "2026-11-01T00:00:00Z"}}  # C has expired at "now"
    now = "2026-11-24T06:00:00Z"
    if case == "draw":
        left, taken = ledger.draw(lots, 600, now)
        assert [(t["lot_id"], t["amount"]) for t in taken] == [("B", 500), ("A", 100)]
        assert left == {"A": {"amount": 200, "valid_until": "2027-01-01T00:00:00Z"},
                        "C": {"amount": 200, "valid_until": "2026-11-01T00:00:00Z"}}
        with pytest.raises(ledger.NotEnough) as short:
            ledger.draw(lots, 801, now)
        assert short.value.available == 800
    else:
        drawn = [{"lot_id": "B", "amount": 500, "valid_until": "2026-12-01T00:00:00Z"},
                 {"lot_id": "A", "amount": 100, "valid_until": "2027-01-01T00:00:00Z"}]
        assert [(p["lot_id"], p["amount"]) for p in ledger.return_plan(drawn, 0, 300)] == [("A", 100), ("B", 200)]
        assert [(p["lot_id"], p["amount"]) for p in ledger.return_plan(drawn, 300, 1000)] == [("B", 300)]
        assert ledger.return_target(100, 500, 1000) == 50 and ledger.return_target(100, 1000, 1000) == 100
        assert ledger.earn_target(99_999, 10, None) == 9_999 and ledger.earn_target(100_000, 10, 5_000) == 5_000
