"""The cashback wallet: per patient and clinic, an append-only ledger of lots.

The seam with payments (``bootstrap.wallet()``):

- ``read(patient_id, clinic_id, now)``: balance (live lots only), currency, version; one GetItem.
- ``spend_ops(patient_id, clinic_id, amount, payment_id, now, expected_version)``: named ops for
  ``db.Tx.extend`` spending oldest lots first. Their conditions fail when anyone changed the wallet since
  ``read`` (item names start ``wallet:``: map a cancellation that names them to 409 ``cashback_changed``);
  more than the balance is 422 naming ``cashback_spend``.
- ``max_spend(amount, policies)``: how much cashback may pay for a payment of ``amount``.

The rest follows events (``wallet_jobs.event_handlers``): a completed visit earns on what was paid for it
(its own projection of ``payment.succeeded`` / ``payment.refunded``), a refund after completion reverses its
share, a released or refunded payment gives spent cashback back, and the expiry job writes lots off. Every
handler derives what to write from stored state under version conditions, so a repeated or reordered event
writes nothing twice (docs/architecture.md, Cashback wallet).
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from chalicelib.core import db, log
from chalicelib.core.errors import AppError, conflict, field_invalid, not_found
from chalicelib.core.ids import new_id
from chalicelib.payments import ledger
from chalicelib.payments import wallet_store as store

RETRIES = 12
EXPIRE_BATCH = 30  # lots written off per transaction: head + 30 entries + counters stay under 100 items
DEFAULTS = {"cashback_percent": 10, "cashback_cap": None, "cashback_max_spend_percent": 50,
            "cashback_expiry_days": 365}


def _iso(dt: datetime) -> str:
    return ledger.iso(dt)


def _hour(at_iso: str) -> str:
    return at_iso[:13]


def _policy(policies: Any, name: str) -> Any:
    if policies is None:
        return DEFAULTS[name]
    value = getattr(policies, name, None) if not isinstance(policies, dict) else policies.get(name)
    return DEFAULTS[name] if value is None and name != "cashback_cap" else value


def cashback_changed() -> AppError:
    return conflict("cashback_changed", "the cashback balance changed meanwhile; read it again")


class Wallet:
    def __init__(self, clock_now: Optional[Callable[[], datetime]] = None) -> None:
        from chalicelib.core import clock

        self._now = clock_now or clock.now
        # (patient, clinic, version) -> head: a head at a given version never changes, so what ``read`` saw
        # serves ``spend_ops`` for that version without a second read (one process, one request at a time).
        self._seen: dict[tuple[str, str, int], dict[str, Any]] = {}

    # ------------------------------------------------------------------ the seam

    def read(self, patient_id: str, clinic_id: str, now: datetime) -> dict[str, Any]:
        head = store.get_head(patient_id, clinic_id)
        if head is None:
            return {"balance": 0, "currency": None, "version": 0, "lots": []}
        self._remember(head)
        now_iso = _iso(now)
        lots = ledger.live(head.get("lots") or {}, now_iso)
        return {"balance": ledger.total(lots), "currency": head.get("currency"), "version": int(head["version"]),
                "lots": [{"lot_id": k, "amount": int(lots[k]["amount"]), "valid_until": lots[k]["valid_until"]}
                         for k in ledger.oldest_first(lots)]}

    @staticmethod
    def max_spend(amount: int, policies: Any) -> int:
        """The most cashback one payment of ``amount`` may use: the clinic's share, rounded down."""
        share = int(_policy(policies, "cashback_max_spend_percent"))
        return max(0, int(amount)) * share // 100

    def spend_ops(self, patient_id: str, clinic_id: str, amount: int, payment_id: str, now: datetime,
                  expected_version: int) -> list[tuple[str, dict[str, Any]]]:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise field_invalid("cashback_spend", "invalid_amount", "a whole, non-negative number of minor units")
        if amount == 0:
            return []
        head = self._seen.get((patient_id, clinic_id, int(expected_version)))
        if head is None:
            head = store.get_head(patient_id, clinic_id)
        if head is None or int(head["version"]) != int(expected_version):
            if head is None and expected_version == 0:
                raise field_invalid("cashback_spend", "more_than_balance", "the cashback balance is 0")
            raise cashback_changed()
        now_iso = _iso(now)
        try:
            lots, taken = ledger.draw(head.get("lots") or {}, amount, now_iso)
        except ledger.NotEnough as short:
            raise field_invalid("cashback_spend", "more_than_balance",
                                f"the cashback balance is {short.available}") from None
        new = self._next(head, lots, spent_total=int(head.get("spent_total", 0)) + amount)
        entry = store.entry_item(patient_id, clinic_id, {"kind": "spend", "amount": -amount,
                                                          "balance_after": int(new["balance"]), "at": now_iso,
                                                          "payment_id": payment_id, "lots": taken})
        record = store.spend_item({"payment_id": payment_id, "patient_id": patient_id, "clinic_id": clinic_id,
                                   "currency": head.get("currency"), "spent": amount, "drawn": taken,
                                   "returned": 0, "version": 1, "created_at": now_iso})
        from chalicelib.core import events

        event = events.event_item("wallet.spent", {"payment_id": payment_id, "patient_id": patient_id,
                                                   "clinic_id": clinic_id, "amount": amount, "at": now_iso,
                                                   "currency": head.get("currency"),
                                                   "entry_id": entry["entry_id"]}, now)
        return [(store.HEAD, store.put_head_op(new, int(expected_version))),
                ("wallet:entry", db.put_new_op(entry)),
                ("wallet:payment", db.put_new_op(record)),
                ("event:wallet.spent", db.put_new_op(event))]

    # ------------------------------------------------------------------ what people read

    def my_wallets(self, caller: Any, limit: int, cursor: Optional[str]) -> dict[str, Any]:
        now_iso = _iso(self._now())
        items, next_cursor = store.wallets_page(caller.user_id, limit, cursor)
        return {"items": [self._summary(h, now_iso) for h in items], "next_cursor": next_cursor}

    def my_wallet(self, caller: Any, clinic_id: str, limit: int, cursor: Optional[str]) -> dict[str, Any]:
        from chalicelib.core.ids import is_ulid

        if not is_ulid(clinic_id):
            raise not_found()
        head = store.get_head(caller.user_id, clinic_id)
        if head is None:
            raise not_found()
        now_iso = _iso(self._now())
        entries, next_cursor = store.entries_page(caller.user_id, clinic_id, limit, cursor)
        cur = head.get("currency")
        live = ledger.live(head.get("lots") or {}, now_iso)
        return {**self._summary(head, now_iso),
                "expiring": [{"amount": {"amount": int(live[k]["amount"]), "currency": cur},
                              "valid_until": live[k]["valid_until"]} for k in ledger.oldest_first(live)],
                "entries": [self._entry_view(e, cur) for e in entries], "next_cursor": next_cursor}

    @staticmethod
    def _summary(head: dict[str, Any], now_iso: str) -> dict[str, Any]:
        cur = head.get("currency")
        live = ledger.live(head.get("lots") or {}, now_iso)
        order = ledger.oldest_first(live)
        first = {"amount": {"amount": int(live[order[0]]["amount"]), "currency": cur},
                 "valid_until": live[order[0]]["valid_until"]} if order else None
        out = {"clinic_id": head["clinic_id"], "balance": {"amount": ledger.total(live), "currency": cur},
               "earned": {"amount": int(head.get("earned_total", 0)), "currency": cur},
               "spent": {"amount": int(head.get("spent_total", 0)), "currency": cur},
               "version": int(head["version"]), "updated_at": head.get("updated_at")}
        if first:
            out["next_expiry"] = first
        return out

    @staticmethod
    def _entry_view(e: dict[str, Any], cur: Optional[str]) -> dict[str, Any]:
        out = {"entry_id": e["entry_id"], "kind": e["kind"], "amount": {"amount": int(e["amount"]), "currency": cur},
               "balance_after": {"amount": int(e["balance_after"]), "currency": cur}, "at": e["at"]}
        for k in ("booking_id", "payment_id", "refund_id", "valid_until"):
            if e.get(k):
                out[k] = e[k]
        return out

    def clinic_report(self, caller: Any, clinic_id: str, q: Any) -> dict[str, Any]:
        from chalicelib.clinics import access as clinic_access

        clinic = clinic_access.readable_clinic(caller, clinic_id)
        zone = q.time_zone or clinic_access.home_zone(clinic_id) or "UTC"
        first, last = _utc_hours(q.date_from, q.date_to, zone)
        cur = clinic.get("currency")
        total = store.get_clinic_total(clinic_id) or {}
        sums = {k: 0 for k in store.COUNTERS}
        for item in store.clinic_hours(clinic_id, first, last):
            for k in store.COUNTERS:
                sums[k] += int(item.get(k) or 0)
        return {"clinic_id": clinic_id, "currency": cur,
                "outstanding": {"amount": max(0, int(total.get("outstanding") or 0)), "currency": cur},
                "period": {"from": q.date_from.isoformat(), "to": q.date_to.isoformat(), "time_zone": zone,
                           **{k: {"amount": v, "currency": cur} for k, v in sums.items()}}}

    # ------------------------------------------------------------------ events: earning on a visit

    def on_payment_succeeded(self, data: dict[str, Any]) -> None:
        if not data.get("booking_id"):
            return

        def apply(base: dict[str, Any]) -> None:
            pay = base["payments"].setdefault(data["payment_id"], {"paid": 0, "refunded": 0})
            pay["paid"] = max(int(pay["paid"]), int(data.get("amount") or 0))
        self._settle_visit(data, apply)

    def on_payment_refunded(self, data: dict[str, Any]) -> None:
        if data.get("booking_id"):
            def apply(base: dict[str, Any]) -> None:
                pay = base["payments"].setdefault(data["payment_id"], {"paid": 0, "refunded": 0})
                pay["paid"] = max(int(pay["paid"]), int(data.get("paid_amount") or 0))
                pay["refunded"] = max(int(pay["refunded"]), int(data.get("refunded_total") or 0))
            self._settle_visit(data, apply)

    def on_booking_completed(self, data: dict[str, Any]) -> None:
        from chalicelib.clinics import access as clinic_access

        terms = clinic_access.cashback_terms(data["clinic_id"])
        if terms is None:
            return
        pol = terms["policies"]
        cap = _policy(pol, "cashback_cap")

        def apply(base: dict[str, Any]) -> None:
            if base.get("completed"):
                return  # the rate of the first completion stands
            base.update(completed=True, percent=int(_policy(pol, "cashback_percent")),
                        cap=int(cap["amount"]) if cap else None, currency=terms["currency"],
                        expiry_days=int(_policy(pol, "cashback_expiry_days")))
        self._settle_visit(data, apply)

    def _settle_visit(self, data: dict[str, Any], apply: Callable[[dict[str, Any]], None]) -> None:
        """Apply one event's facts to the visit's projection and bring what the visit earned in line with it,
        in one transaction under both items' versions; a clash reads both again."""
        bid, pid, cid = data["booking_id"], data["patient_id"], data["clinic_id"]
        for _ in range(RETRIES):
            stored = store.get_base(bid)
            base = copy.deepcopy(stored) if stored else {
                "booking_id": bid, "patient_id": pid, "clinic_id": cid, "payments": {}, "completed": False,
                "held": 0, "written_off": 0, "lots": [], "version": 0}
            if base["patient_id"] != pid or base["clinic_id"] != cid:
                log.warning("wallet.event_mismatch", booking_id=bid)
                return
            apply(base)
            delta = self._visit_delta(base)
            if stored is not None and base == stored and delta == 0:
                return
            now = self._now()
            tx = db.Tx()
            if delta:
                self._move_for_visit(tx, base, delta, now)
            base["version"] = int(base["version"]) + 1
            tx.add("wallet:base", store.put_if_version(store.base_item(base), int(base["version"]) - 1))
            try:
                tx.commit()
                return
            except db.TxCancelled:
                continue
        raise RuntimeError("the wallet kept changing; the event is retried")

    @staticmethod
    def _visit_delta(base: dict[str, Any]) -> int:
        if not base.get("completed"):
            return 0
        paid = sum(max(0, int(p["paid"]) - int(p["refunded"])) for p in base["payments"].values())
        target = ledger.earn_target(paid, int(base.get("percent") or 0), base.get("cap"))
        return target - (int(base["held"]) - int(base.get("written_off", 0)))

    def _move_for_visit(self, tx: db.Tx, base: dict[str, Any], delta: int, now: datetime) -> None:
        pid, cid = base["patient_id"], base["clinic_id"]
        head = store.get_head(pid, cid) or self._empty_head(pid, cid, base.get("currency"), now)
        now_iso = _iso(now)
        lots = dict(head.get("lots") or {})
        if delta > 0:
            lot_id = new_id()
            until = _iso(now + timedelta(days=int(base.get("expiry_days") or 365)))
            lots[lot_id] = {"amount": delta, "valid_until": until, "source": base["booking_id"]}
            new = self._next(head, lots, earned_total=int(head.get("earned_total", 0)) + delta)
            entry = {"kind": "earn", "amount": delta, "valid_until": until, "lots": [{"lot_id": lot_id,
                                                                                      "amount": delta}]}
            base["held"] = int(base["held"]) + delta
            base["lots"] = list(base.get("lots") or []) + [lot_id]
            counters = {"earned": delta}
        else:
            want = -delta
            can = min(want, ledger.available(lots, now_iso))
            lots, taken = ledger.draw(lots, can, now_iso, prefer=base.get("lots") or [])
            new = self._next(head, lots, reversed_total=int(head.get("reversed_total", 0)) + can)
            entry = {"kind": "reverse", "amount": -can, "lots": taken}
            base["held"] = int(base["held"]) - can
            base["written_off"] = int(base.get("written_off", 0)) + (want - can)
            counters = {"reversed": can}
            if want > can:
                log.event("wallet.reversal_short", booking_id=base["booking_id"], short=want - can)
            if can == 0:
                return
        entry_id = new_id()
        tx.add(store.HEAD, store.put_head_op(new, int(head["version"])))
        tx.add("wallet:entry", db.put_new_op(store.entry_item(pid, cid, {
            **entry, "entry_id": entry_id, "balance_after": int(new["balance"]), "at": now_iso,
            "booking_id": base["booking_id"]})))
        tx.extend(store.counter_ops(cid, _hour(now_iso), "visit", **counters))
        # what notify tells the patient and analytics counts (the clinic's liability), with the movement itself
        tx.event("cashback.earned" if delta > 0 else "cashback.reversed", {
            "patient_id": pid, "clinic_id": cid, "booking_id": base["booking_id"], "entry_id": entry_id,
            "amount": counters["earned"] if delta > 0 else counters["reversed"],
            "currency": new.get("currency") or base.get("currency")})

    # ------------------------------------------------------------------ events: spent cashback comes back

    def on_payment_released(self, data: dict[str, Any]) -> None:
        self._give_back(data["payment_id"], lambda rec: int(rec["spent"]), data.get("refund_id"))

    def on_refund_returns_spent(self, data: dict[str, Any]) -> None:
        self._give_back(data["payment_id"], lambda rec: ledger.return_target(
            int(rec["spent"]), int(data.get("refunded_total") or 0), int(data.get("paid_amount") or 0)),
            data.get("refund_id"))

    def _give_back(self, payment_id: str, target_of: Callable[[dict[str, Any]], int],
                   refund_id: Optional[str]) -> None:
        for _ in range(RETRIES):
            rec = store.get_spend(payment_id)
            if rec is None:
                return  # no cashback was spent on this payment
            delta = min(int(rec["spent"]), target_of(rec)) - int(rec.get("returned", 0))
            if delta <= 0:
                return
            pid, cid = rec["patient_id"], rec["clinic_id"]
            now = self._now()
            now_iso = _iso(now)
            head = store.get_head(pid, cid)
            if head is None:  # cannot happen: the spend wrote the head
                raise RuntimeError("a spend without its wallet")
            plan = ledger.return_plan(rec.get("drawn") or [], int(rec.get("returned", 0)), delta)
            lots, went = ledger.give_back(head.get("lots") or {}, plan, now, new_id)
            new = self._next(head, lots, returned_total=int(head.get("returned_total", 0)) + delta)
            rec = {**rec, "returned": int(rec.get("returned", 0)) + delta, "version": int(rec["version"]) + 1}
            tx = db.Tx()
            tx.add(store.HEAD, store.put_head_op(new, int(head["version"])))
            tx.add("wallet:payment", store.put_if_version(store.spend_item(
                {k: v for k, v in rec.items() if k not in ("PK", "SK", "type")}), int(rec["version"]) - 1))
            back = store.entry_item(pid, cid, {
                "kind": "return", "amount": delta, "balance_after": int(new["balance"]), "at": now_iso,
                "payment_id": payment_id, "refund_id": refund_id, "lots": went})
            tx.add("wallet:entry", db.put_new_op(back))
            tx.extend(store.counter_ops(cid, _hour(now_iso), "return", returned=delta))
            tx.event("cashback.returned", {"patient_id": pid, "clinic_id": cid, "payment_id": payment_id,
                                           "refund_id": refund_id, "amount": delta, "currency": head.get("currency"),
                                           "entry_id": back["entry_id"]})
            try:
                tx.commit()
                return
            except db.TxCancelled:
                continue
        raise RuntimeError("the wallet kept changing; the event is retried")

    def on_spent(self, data: dict[str, Any]) -> None:
        """Count a spend into its clinic's totals, once."""
        tx = db.Tx().add("wallet:counted", store.mark_counted_op(data["payment_id"]))
        tx.extend(store.counter_ops(data["clinic_id"], _hour(data["at"]), "spend", spent=int(data["amount"])))
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.condition_failed("wallet:counted"):
                return  # counted already (or the spend is gone)
            raise

    # ------------------------------------------------------------------ expiry

    def expire_due(self, now: datetime, limit: int = 100) -> dict[str, int]:
        """Write off every lot past its date, for the wallets the sparse due index names (a batch per shard)."""
        now_iso = _iso(now)
        wallets = lots = 0
        for shard in range(store.DUE_SHARDS):
            for item in store.due_heads(shard, now_iso, limit):
                wallets += 1
                lots += self.expire_wallet(item["patient_id"], item["clinic_id"], now)
        log.event("wallet.expired", wallets=wallets, lots=lots)
        return {"wallets": wallets, "lots": lots}

    def expire_wallet(self, pid: str, cid: str, now: datetime) -> int:
        now_iso = _iso(now)
        done = 0
        clashes = 0
        while clashes < RETRIES:
            head = store.get_head(pid, cid)
            if head is None:
                return done
            lots = dict(head.get("lots") or {})
            due = ledger.due(lots, now_iso)[:EXPIRE_BATCH]
            if not due:
                return done
            tx = db.Tx()
            balance = int(head["balance"])
            by_hour: dict[str, int] = {}
            entry_ids = []
            for i, lot_id in enumerate(due):
                lot = lots.pop(lot_id)
                amount = int(lot["amount"])
                balance -= amount
                by_hour[_hour(str(lot["valid_until"]))] = by_hour.get(_hour(str(lot["valid_until"])), 0) + amount
                gone_item = store.entry_item(pid, cid, {
                    "kind": "expire", "amount": -amount, "balance_after": balance, "at": str(lot["valid_until"]),
                    "written_at": now_iso, "lots": [{"lot_id": lot_id, "amount": amount}]})
                entry_ids.append(gone_item["entry_id"])
                tx.add(f"wallet:entry:{i}", db.put_new_op(gone_item))
            gone = sum(by_hour.values())
            new = self._next(head, lots, expired_total=int(head.get("expired_total", 0)) + gone)
            tx.add(store.HEAD, store.put_head_op(new, int(head["version"])))
            for j, (hour, amount) in enumerate(sorted(by_hour.items())):
                ops = store.counter_ops(cid, hour, f"expire{j}", expired=amount)
                tx.add(*ops[1])
                if j == 0:
                    total = store.counter_ops(cid, hour, "expire", expired=gone)[0]
                    tx.add(*total)
            tx.event("cashback.expired", {"patient_id": pid, "clinic_id": cid, "amount": gone,
                                          "currency": head.get("currency"), "lots": len(due),
                                          "entry_id": entry_ids[0]})
            try:
                tx.commit()
                done += len(due)
            except db.TxCancelled:
                clashes += 1
        return done

    # ------------------------------------------------------------------ helpers

    def _remember(self, head: dict[str, Any]) -> None:
        if len(self._seen) > 256:
            self._seen.clear()
        self._seen[(head["patient_id"], head["clinic_id"], int(head["version"]))] = head

    @staticmethod
    def _empty_head(pid: str, cid: str, currency: Optional[str], now: datetime) -> dict[str, Any]:
        return {"patient_id": pid, "clinic_id": cid, "currency": currency, "balance": 0, "lots": {},
                "version": 0, "created_at": _iso(now)}

    def _next(self, head: dict[str, Any], lots: ledger.Lots, **totals: int) -> dict[str, Any]:
        """The head after a change: its lots, the balance as their sum, the next version."""
        new = {k: v for k, v in head.items() if k not in ("PK", "SK", "type", "GSI2PK", "GSI2SK")}
        new.update(totals, lots=lots, balance=ledger.total(lots), version=int(head["version"]) + 1,
                   updated_at=_iso(self._now()))
        return new


def _utc_hours(date_from: Any, date_to: Any, zone: str) -> tuple[str, str]:
    """The first and last UTC hour (``YYYY-MM-DDTHH``) of the local days ``date_from`` .. ``date_to``."""
    from datetime import time, timezone
    from zoneinfo import ZoneInfo

    z = ZoneInfo(zone)
    start = datetime.combine(date_from, time(0), tzinfo=z).astimezone(timezone.utc)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=z).astimezone(timezone.utc) \
        - timedelta(seconds=1)
    return start.strftime("%Y-%m-%dT%H"), end.strftime("%Y-%m-%dT%H")
