from tests.conftest import body
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import world


def test_slots_and_a_booking(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    free = slots(client, w)
    assert [s["local"] for s in free] == ["2026-11-30T09:00+02:00", "2026-11-30T09:40+02:00", "2026-11-30T10:20+02:00",
                                          "2026-11-30T11:00+02:00", "2026-11-30T11:40+02:00", "2026-11-30T12:20+02:00"]
    r = book(client, w, w["patient"]["token"], free[0]["start"])
    assert r.status_code == 201, r.body
    assert body(r)["status"] == "confirmed"
    assert [s["start"] for s in slots(client, w)] == [s["start"] for s in free[1:]]
    r = book(client, w, w["patient"]["token"], free[0]["start"])
    assert r.status_code == 409 and body(r)["code"] == "slot_taken", r.body
