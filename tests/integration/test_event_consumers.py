"""Event consumers under real concurrency, against DynamoDB Local: the stream and the scheduled drain
(or two Lambda containers) consuming the same events at once still run each follow-up exactly once."""
from concurrent.futures import ThreadPoolExecutor

from chalicelib import bootstrap
from chalicelib.core import db
from tests.conftest import jpost
from tests.integration.test_booking_concurrency import many_patients_from_one_address
from tests.unit.booking_setup import book, patient, slots
from tests.unit.clinic_setup import ok, world


def test_two_consumers_at_once_make_each_offer_and_send_each_sms_once(client, outbox, fixed_clock, monkeypatch):
    many_patients_from_one_address(monkeypatch)
    w = world(client, outbox, fixed_clock)
    free = slots(client, w)[:5]
    booked = [ok(book(client, w, w["patient"]["token"], s["start"]), 201) for s in free]
    waiting = [patient(client, outbox, f"+7914100{i:04d}") for i in range(5)]
    for i, p in enumerate(waiting):
        ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": w["service_id"],
                                       "doctor_id": w["doctor"]["user_id"], "date_from": "2026-11-30",
                                       "date_to": "2026-12-06"}, token=p["token"]), 201)
        fixed_clock.advance(seconds=1)
    for b in booked:
        ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    sent_before = {p["phone"]: len(outbox.to(p["phone"])) for p in waiting}
    pending = bootstrap.outbox().due(fixed_clock.now(), 100)
    records = [{"eventName": "INSERT", "dynamodb": {"NewImage": db.to_item(e)}} for e in pending]

    def stream():
        return bootstrap.outbox().consume_stream(records)

    def scheduled():
        return bootstrap.outbox().drain().done

    with ThreadPoolExecutor(max_workers=4) as pool:
        for f in [pool.submit(stream), pool.submit(scheduled), pool.submit(scheduled), pool.submit(stream)]:
            f.result()
    bootstrap.outbox().drain()  # whatever a lease held back when the others finished
    offers = []
    for p in waiting:
        mine = ok(jpost(client, "/me/bookings", token=p["token"], method="get"))["items"]
        offers += [(p["phone"], x["start"]["utc"]) for x in mine if x["status"] == "offered"]
    # five freed times, five waiting patients: each patient one offer, each time offered once
    assert sorted(t for _, t in offers) == sorted(s["start"] for s in free)
    assert sorted(ph for ph, _ in offers) == sorted(p["phone"] for p in waiting)
    for p in waiting:
        assert len(outbox.to(p["phone"])) - sent_before[p["phone"]] == 1
    assert bootstrap.outbox().due(fixed_clock.now(), 100) == []
