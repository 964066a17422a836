"""Regressions the slot model pointed at in booking/service.py (owned by the booking engineer)."""
from datetime import date, datetime, time, timedelta, timezone

from tests.unit.test_slot_properties import App, check_scenario, w  # noqa: F401  (the fixture)

UTC = timezone.utc


def scenario(capacity, ops):
    return {"zone": "Europe/Berlin", "d_from": date(2026, 3, 23), "d_to": date(2026, 3, 31),
            "templates": [(0, time(9), time(12))], "leaves": [[], []], "service": "scan30", "capacity": capacity,
            "start": datetime(2026, 3, 23, 6, tzinfo=UTC) - timedelta(days=1), "ops": ops}


def prepared(w, fixed_clock, sc):
    app = App(w, fixed_clock)
    fixed_clock.set(sc["start"] - timedelta(days=7))
    app.prepare(sc)
    fixed_clock.set(sc["start"])
    return app


def test_reschedule_to_its_own_start_with_a_resource(w, fixed_clock):
    """Passes in moto. Real DynamoDB refuses a transaction that deletes and puts one item (here the
    resource-use item ``RESUSE#<branch>#<kind>`` / ``<start>#<booking>``, same key before and after);
    moto does not enforce that rule, so this needs DynamoDB Local to say more."""
    sc = scenario(1, [("book", 0, 0, 0, True), ("reschedule", 0, 0, True)])
    check_scenario(prepared(w, fixed_clock, sc), sc)


def test_reschedule_takes_the_second_unit_when_the_first_is_busy(w, fixed_clock):
    """Found by the slot model: reschedule always took the first unit of a resource and never retried, so a
    slot that free slots offered (unit 2 free) was refused 409 slot_taken."""
    # doctor 0 holds unit 0 at 09:00; doctor 1 books 09:30 (unit 0), then moves to 09:00 where only unit 1 is free
    sc = scenario(2, [("book", 0, 0, 0, True), ("book", 1, 1, 1, True), ("reschedule", 1, 0, False)])
    check_scenario(prepared(w, fixed_clock, sc), sc)
