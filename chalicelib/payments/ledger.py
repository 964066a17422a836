"""The cashback ledger's arithmetic: lots, oldest first, returns and reversals. Pure functions, no I/O.

A wallet (one patient, one clinic) holds **lots**: what one visit earned (or one return gave back), each
with the instant it is valid until. ``lots`` is a dict ``lot_id -> {"amount", "valid_until", "source"}``
(``valid_until`` an ISO instant in UTC, so strings compare as instants). Every function returns new dicts
and never changes its arguments; every amount is an integer in minor units and never below zero.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Optional

Lots = dict[str, dict[str, Any]]
# When returned cashback's own lot has already passed its date, it comes back valid this long (a visit the
# clinic cancelled must not cost the patient cashback that happened to expire meanwhile).
RETURN_GRACE_DAYS = 30


class NotEnough(Exception):
    """More asked than the live lots hold."""

    def __init__(self, available: int) -> None:
        super().__init__(f"{available} available")
        self.available = available


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_live(lot: dict[str, Any], now_iso: str) -> bool:
    return int(lot["amount"]) > 0 and str(lot["valid_until"]) > now_iso


def live(lots: Lots, now_iso: str) -> Lots:
    return {k: dict(v) for k, v in lots.items() if is_live(v, now_iso)}


def oldest_first(lots: Lots) -> list[str]:
    """Lot ids in the order they are spent: the one whose date comes first, then by id (creation)."""
    return sorted(lots, key=lambda k: (str(lots[k]["valid_until"]), k))


def total(lots: Lots) -> int:
    return sum(int(v["amount"]) for v in lots.values())


def available(lots: Lots, now_iso: str) -> int:
    """What may be spent now: the live lots only (an expired lot counts for nothing, job or no job)."""
    return total(live(lots, now_iso))


def draw(lots: Lots, amount: int, now_iso: str, prefer: Iterable[str] = ()) -> tuple[Lots, list[dict[str, Any]]]:
    """Take ``amount`` from the live lots, ``prefer``red lots first, then oldest first. Returns the new lots
    (emptied ones removed) and what came from which lot, in the order taken. ``NotEnough`` if short."""
    if amount < 0:
        raise ValueError("a negative draw")
    pool = live(lots, now_iso)
    have = total(pool)
    if amount > have:
        raise NotEnough(have)
    preferred = [k for k in oldest_first(pool) if k in set(prefer)]
    order = preferred + [k for k in oldest_first(pool) if k not in set(preferred)]
    out = {k: dict(v) for k, v in lots.items()}
    taken: list[dict[str, Any]] = []
    left = amount
    for lot_id in order:
        if left == 0:
            break
        part = min(left, int(out[lot_id]["amount"]))
        if part == 0:
            continue
        out[lot_id]["amount"] = int(out[lot_id]["amount"]) - part
        taken.append({"lot_id": lot_id, "amount": part, "valid_until": out[lot_id]["valid_until"]})
        left -= part
        if out[lot_id]["amount"] == 0:
            del out[lot_id]
    return out, taken


def earn_target(base: int, percent: int, cap: Optional[int]) -> int:
    """What a visit earns on ``base`` (money paid for it, net of refunds): ``percent`` of it rounded down to
    the minor unit (cashback is never rounded up), at most ``cap`` when the clinic sets one."""
    if base <= 0 or percent <= 0:
        return 0
    value = base * percent // 100
    return min(value, cap) if cap is not None else value


def return_target(spent: int, refunded_total: int, paid_amount: int) -> int:
    """How much of the cashback spent on a payment comes back once ``refunded_total`` of its ``paid_amount``
    is refunded: the same share, rounded down; all of it once the whole payment is refunded."""
    if spent <= 0 or refunded_total <= 0:
        return 0
    if paid_amount <= 0 or refunded_total >= paid_amount:
        return spent
    return spent * refunded_total // paid_amount


def return_plan(drawn: list[dict[str, Any]], already: int, amount: int) -> list[dict[str, Any]]:
    """Which parts of a spend come back next: the last taken first (the later dates return first), skipping
    the ``already`` returned units. The parts sum to ``min(amount, what is left to return)``."""
    plan: list[dict[str, Any]] = []
    skip, left = already, amount
    for part in reversed(drawn):
        size = int(part["amount"])
        if skip >= size:
            skip -= size
            continue
        usable = size - skip
        skip = 0
        give = min(usable, left)
        if give:
            plan.append({**part, "amount": give})
            left -= give
        if left == 0:
            break
    return plan


def give_back(lots: Lots, plan: list[dict[str, Any]], now: datetime, new_lot_id) -> tuple[Lots, list[dict[str, Any]]]:
    """Put returned parts back into their own lots (their own dates) while those are still valid; a part
    whose date has passed comes back as a new lot valid ``RETURN_GRACE_DAYS`` from now. Returns the new lots
    and where each part went."""
    now_iso = iso(now)
    out = {k: dict(v) for k, v in lots.items()}
    went: list[dict[str, Any]] = []
    for part in plan:
        lot_id, amount, until = part["lot_id"], int(part["amount"]), str(part["valid_until"])
        if until > now_iso and (lot_id not in out or str(out[lot_id]["valid_until"]) == until):
            lot = out.setdefault(lot_id, {"amount": 0, "valid_until": until, "source": part.get("source", "return")})
            lot["amount"] = int(lot["amount"]) + amount
            went.append({"lot_id": lot_id, "amount": amount, "valid_until": until})
        else:
            fresh = new_lot_id()
            until = iso(now + timedelta(days=RETURN_GRACE_DAYS))
            out[fresh] = {"amount": amount, "valid_until": until, "source": "return"}
            went.append({"lot_id": fresh, "amount": amount, "valid_until": until})
    return out, went


def due(lots: Lots, now_iso: str) -> list[str]:
    """Lots past their date that still hold something (what the expiry job writes off), oldest first."""
    return [k for k in oldest_first(lots) if int(lots[k]["amount"]) > 0 and str(lots[k]["valid_until"]) <= now_iso]


def next_date(lots: Lots) -> Optional[str]:
    dates = [str(v["valid_until"]) for v in lots.values() if int(v["amount"]) > 0]
    return min(dates) if dates else None
