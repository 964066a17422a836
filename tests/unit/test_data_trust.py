"""Data a clinic can trust: follow-ups on events, reads that never truncate, transactions that never
overflow, the patient who clicks wins, idempotent retries, local days and bound cursors.

Each test here states a fault found in the booking engine and proves it fixed."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.booking import store
from chalicelib.core import db, events
from tests.conftest import body, jpost
from tests.unit.booking_setup import MONDAY, book, patient, slots
from tests.unit.clinic_setup import ok, world


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def waitlist(client, w, p, day_from="2026-11-30", day_to="2026-12-06", service_id=None):
    return ok(jpost(client, "/waitlist", {"clinic_id": w["a"]["clinic_id"], "service_id": service_id or w["service_id"],
                                          "doctor_id": w["doctor"]["user_id"], "date_from": day_from,
                                          "date_to": day_to}, token=p["token"]), 201)


def offers(client, p):
    return [b for b in ok(jpost(client, "/me/bookings", token=p["token"], method="get"))["items"]
            if b["status"] == "offered"]


def fresh(client, p):
    """A new access token after the clock moved past the old one's 15 minutes."""
    r = jpost(client, "/auth/refresh", {"refresh_token": p["refresh"]})
    p.update(token=body(r)["access_token"], refresh=body(r)["refresh_token"])
    return p


def cancel(client, token, bid):
    return jpost(client, f"/bookings/{bid}/cancel", {}, token=token)


# ------------------------------------------------------------------ events written with their change

def test_a_cancellation_commits_with_its_event_and_a_failing_follow_up_never_fails_it(client, outbox, w, drain,
                                                                                     monkeypatch, fixed_clock):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    waiting = patient(client, outbox, "+79130000101")
    waitlist(client, w, waiting)

    def provider_down(phone, text):
        raise RuntimeError("SMS provider down")

    monkeypatch.setattr(bootstrap.sms(), "send", provider_down)
    assert cancel(client, w["patient"]["token"], booked["booking_id"]).status_code == 200
    # the event is in the table, written by the same transaction as the cancellation
    pending = [e for e in bootstrap.outbox().due(fixed_clock.now(), 100) if e["kind"] == "booking.cancelled"]
    assert [e["data"]["booking_id"] for e in pending] == [booked["booking_id"]]
    result = drain()
    assert "booking.cancelled" in result.kinds and result.retried == 1  # offered; its SMS waits for the provider
    assert len(offers(client, waiting)) == 1
    for _ in range(6):  # the provider stays down: retried with a growing delay, then dead-lettered
        fixed_clock.advance(hours=2)
        drain()
    dead = events.dead_letters()
    assert [e["kind"] for e in dead] == ["waitlist.offered"]
    assert len(offers(client, fresh(client, waiting))) == 1  # retries never made a second offer


def test_each_handler_runs_once_per_event_even_when_delivered_twice(client, outbox, w, drain, fixed_clock):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    waiting = patient(client, outbox, "+79130000111")
    waitlist(client, w, waiting)
    ok(cancel(client, w["patient"]["token"], booked["booking_id"]))
    event = bootstrap.outbox().due(fixed_clock.now(), 10)[0]
    sent_before = len(outbox.to(waiting["phone"]))
    drain()
    # a stream redelivers the same new image: nothing happens twice
    assert bootstrap.outbox().dispatch(event) == "busy"
    stream = {"Records": [{"eventName": "INSERT", "dynamodb": {"NewImage": db.to_item(event)}}]}
    bootstrap.outbox().consume_stream(stream["Records"])
    drain()
    assert len(offers(client, waiting)) == 1
    assert len(outbox.to(waiting["phone"])) == sent_before + 1


def test_leaving_the_waitlist_while_holding_an_offer_breaks_nothing_later(client, outbox, w, drain, fixed_clock):
    """Today: the lapsed offer's waitlist mark rewrote the deleted entry, and every later cancellation of
    that doctor answered 500."""
    free = slots(client, w)
    first = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    second = ok(book(client, w, w["patient"]["token"], free[1]["start"]), 201)
    waiting = patient(client, outbox, "+79130000121")
    entry = waitlist(client, w, waiting)
    ok(cancel(client, w["patient"]["token"], first["booking_id"]))
    drain()
    assert len(offers(client, waiting)) == 1
    assert jpost(client, f"/waitlist/{entry['waitlist_id']}", token=waiting["token"], method="delete").status_code == 204
    fixed_clock.advance(minutes=16)
    assert bootstrap.booking().expire_due_holds() == 1
    drain()
    fresh(client, waiting), fresh(client, w["patient"])
    assert ok(jpost(client, "/me/waitlist", token=waiting["token"], method="get"))["items"] == []
    r = cancel(client, w["patient"]["token"], second["booking_id"])
    assert r.status_code == 200, r.body
    assert drain().dead == 0


# ------------------------------------------------------------------ reads that never truncate

def test_the_waitlist_offers_past_a_hundred_older_entries(client, outbox, w, drain, fixed_clock):
    """Today the waitlist read stopped at 100 entries: the 121st patient never got an offer."""
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    did, cid = w["doctor"]["user_id"], w["a"]["clinic_id"]
    with_items = []
    for i in range(120):  # older entries for another service that the freed time does not suit
        at = (fixed_clock.now() - timedelta(days=1, seconds=-i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with_items.append(store.waitlist_item({
            "waitlist_id": f"01J{i:023d}", "patient_id": f"01K{i:023d}", "doctor_id": did, "clinic_id": cid,
            "service_id": "01JSERVICE0000000000000000", "date_from": MONDAY, "date_to": "2026-12-06",
            "created_at": at}))
    ddb = db.ddb()
    for at in range(0, len(with_items), 25):
        ddb.batch_write_item(RequestItems={db.table_name(): [{"PutRequest": {"Item": db.to_item(i)}}
                                                             for i in with_items[at:at + 25]]})
    waiting = patient(client, outbox, "+79130000131")
    waitlist(client, w, waiting)
    ok(cancel(client, w["patient"]["token"], booked["booking_id"]))
    drain()
    assert [o["start"]["utc"] for o in offers(client, waiting)] == [start]


def test_closed_waitlist_entries_leave_the_read_that_offers(client, outbox, w, drain, fixed_clock, ddb_calls):
    start = slots(client, w)[0]["start"]
    booked = ok(book(client, w, w["patient"]["token"], start), 201)
    done = patient(client, outbox, "+79130000141")
    entry = waitlist(client, w, done)
    old = patient(client, outbox, "+79130000142")
    waitlist(client, w, old, "2026-11-24", "2026-11-25")  # its days have passed by Monday
    ok(cancel(client, w["patient"]["token"], booked["booking_id"]))
    drain()
    offer = offers(client, done)[0]
    ok(jpost(client, f"/bookings/{offer['booking_id']}/accept", {}, token=done["token"]))
    drain()
    assert [x["status"] for x in ok(jpost(client, "/me/waitlist", token=done["token"], method="get"))["items"]] == \
        ["booked"]
    # the offering read sees neither the booked entry nor the one whose days are over
    assert store.open_waitlist(w["doctor"]["user_id"], MONDAY) == []
    assert entry["waitlist_id"]


# ------------------------------------------------------------------ transactions that never overflow

def test_a_long_visit_with_two_resources_moves_to_a_far_time(client, outbox, w, drain, fixed_clock):
    """Today: 1 update + 48 new locks + 48 released locks + 4 resource uses = 101 items, a 500."""
    cid, bid, tok = w["a"]["clinic_id"], w["a"]["branch_id"], w["admin_a"]["token"]
    ok(jpost(client, f"/clinics/{cid}/branches/{bid}/resources", {"kind": "coil", "name": "Head coil", "capacity": 1},
             token=tok), 201)
    svc = ok(jpost(client, f"/clinics/{cid}/services", {
        "name": {"ru": "МРТ с контрастом", "en": "Contrast MRI"}, "duration_minutes": 80,
        "price": {"amount": 900000, "currency": "RUB"}, "modality": "in_person", "resource_kinds": ["mri", "coil"],
        "specialty": "radiologist"}, token=tok), 201)
    free = slots(client, w, service_id=svc["service_id"])
    b = ok(book(client, w, w["patient"]["token"], free[0]["start"], service_id=svc["service_id"]), 201)
    far = slots(client, w, day="2026-12-07", service_id=svc["service_id"])[-1]["start"]
    r = jpost(client, f"/bookings/{b['booking_id']}/reschedule", {"start": far}, token=w["patient"]["token"])
    assert r.status_code == 200, r.body
    assert body(r)["start"]["utc"] == far
    drain()
    # the old time is whole again for everyone, the new one is taken
    assert free[0]["start"] in [s["start"] for s in slots(client, w, service_id=svc["service_id"])]
    assert far not in [s["start"] for s in slots(client, w, day="2026-12-07", service_id=svc["service_id"])]
    moved = store.get_booking(b["booking_id"])
    leftovers = [pk for pk in moved["locks"]]
    assert all(db.get(pk, "LOCK")["booking_id"] == b["booking_id"] for pk in leftovers)
    old_locks = [f"LOCK#D#{w['doctor']['user_id']}#" + free[0]["start"][:16].replace("-", "").replace(":", "")]
    assert db.get(old_locks[0], "LOCK") is None


def test_the_transaction_builder_refuses_past_a_hundred_and_names_what_failed(client, w):
    tx = db.Tx()
    for i in range(101):
        tx.put_new(f"item{i}", {"PK": f"T#{i}", "SK": "T", "type": "t"})
    with pytest.raises(db.TxTooLarge):
        tx.commit()
    db.put_new({"PK": "T#taken", "SK": "T", "type": "t"})
    tx = db.Tx().put_new("free", {"PK": "T#free", "SK": "T", "type": "t"})
    tx.put_new("taken", {"PK": "T#taken", "SK": "T", "type": "t"})
    with pytest.raises(db.TxCancelled) as err:
        tx.commit()
    assert err.value.failed == ["taken"]
    assert db.get("T#free", "T") is None  # all or nothing


# ------------------------------------------------------------------ the patient who clicks wins

def test_a_lapsed_hold_goes_to_the_patient_who_books_it_not_the_waitlist(client, outbox, w, drain, fixed_clock):
    cid = w["a"]["clinic_id"]
    from chalicelib.clinics import store as clinic_store

    clinic = clinic_store.get_clinic(cid)
    db.update_versioned(clinic_store.clinic_pk(cid), "PROFILE",
                        {"payouts": {**clinic.get("payouts", {}), "charges_enabled": True}}, clinic["version"])
    services = ok(jpost(client, f"/clinics/{cid}/services", token=w["admin_a"]["token"], method="get"))["items"]
    version = [x for x in services if x["service_id"] == w["service_id"]][0]["version"]
    ok(jpost(client, f"/clinics/{cid}/services/{w['service_id']}",
             {"prepayment": {"kind": "percent", "percent": 30}, "version": version},
             token=w["admin_a"]["token"], method="patch"))
    start = slots(client, w)[0]["start"]
    held = ok(book(client, w, w["patient"]["token"], start), 201)
    assert held["status"] == "held"
    waiting = patient(client, outbox, "+79130000151")
    waitlist(client, w, waiting)
    fixed_clock.advance(minutes=31)  # the hold lapsed; the job has not run yet
    fresh(client, waiting)
    clicker = patient(client, outbox, "+79130000152")
    assert start in [s["start"] for s in slots(client, w)]
    mine = ok(book(client, w, clicker["token"], start), 201)
    drain()
    assert offers(client, waiting) == []
    assert store.get_booking(mine["booking_id"])["status"] in ("held", "confirmed")


def test_a_retried_booking_returns_the_original_even_after_the_notice_window_passed(client, w, fixed_clock):
    start = slots(client, w)[0]["start"]
    first = book(client, w, w["patient"]["token"], start, key="retry-after-notice-1")
    assert first.status_code == 201
    fixed_clock.set(fixed_clock.now().replace(day=30, hour=5, minute=30))  # 30 minutes before the visit
    fresh(client, w["patient"])
    again = book(client, w, w["patient"]["token"], start, key="retry-after-notice-1")
    assert again.status_code == 200, again.body
    assert body(again)["booking_id"] == body(first)["booking_id"]


# ------------------------------------------------------------------ lists a client can page

def test_the_next_page_of_upcoming_visits_can_be_read_a_minute_later(client, w, fixed_clock):
    """From an outside review: the cursor was bound to the instant the list was read at, so page two of
    upcoming visits (or of a doctor's patients with live grants) was refused one second later."""
    for s in slots(client, w)[:3]:
        ok(book(client, w, w["patient"]["token"], s["start"]), 201)
    first = ok(jpost(client, "/me/bookings?limit=2", token=w["patient"]["token"], method="get"))
    fixed_clock.advance(seconds=60)
    token = w["patient"]["token"]
    r = jpost(client, f"/me/bookings?limit=2&cursor={first['next_cursor']}", token=token, method="get")
    assert r.status_code == 200, r.body
    ids = [b["booking_id"] for b in first["items"]] + [b["booking_id"] for b in body(r)["items"]]
    assert len(ids) == len(set(ids)) == 3


def test_a_cursor_of_one_list_is_refused_by_another(client, w):
    for i, s in enumerate(slots(client, w)[:3]):
        ok(book(client, w, w["patient"]["token"], s["start"]), 201)
    first = ok(jpost(client, "/me/bookings?limit=1", token=w["patient"]["token"], method="get"))
    assert first["next_cursor"]
    second = ok(jpost(client, f"/me/bookings?limit=1&cursor={first['next_cursor']}", token=w["patient"]["token"],
                      method="get"))
    assert second["items"][0]["booking_id"] != first["items"][0]["booking_id"]
    r = jpost(client, f"/me/bookings?when=past&limit=1&cursor={first['next_cursor']}", token=w["patient"]["token"],
              method="get")
    assert r.status_code == 400 and body(r)["code"] == "invalid_cursor"
    assert body(r)["errors"][0]["field"] == "cursor"


def test_the_agenda_and_the_calendar_page_with_a_cursor(client, w):
    for s in slots(client, w)[:5]:
        ok(book(client, w, w["patient"]["token"], s["start"]), 201)
    seen, cursor = [], ""
    for _ in range(5):
        page = ok(jpost(client, f"/me/agenda?date_from={MONDAY}&date_to={MONDAY}&limit=2{cursor}",
                        token=w["doctor"]["token"], method="get"))
        seen += [b["booking_id"] for b in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) == 5
    cal = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/calendar?date_from={MONDAY}&date_to={MONDAY}&limit=2",
                   token=w["admin_a"]["token"], method="get"))
    assert len(cal["items"]) == 2 and cal["next_cursor"]
    r = jpost(client, f"/me/agenda?date_from={MONDAY}&date_to={MONDAY}&cursor={cal['next_cursor']}",
              token=w["doctor"]["token"], method="get")
    assert r.status_code == 400


# ------------------------------------------------------------------ local days that are local

def test_a_monday_morning_in_sakhalin_is_on_monday_in_the_agenda_and_the_calendar(client, w):
    """09:00 on Monday in Asia/Sakhalin is 22:00 UTC on Sunday: today it fell out of Monday's agenda."""
    from tests.unit.clinic_setup import branch

    cid, tok, did = w["a"]["clinic_id"], w["admin_a"]["token"], w["doctor"]["user_id"]
    far = ok(jpost(client, f"/clinics/{cid}/branches", branch("Южно-Сахалинск", "Asia/Sakhalin", "Сахалин"),
                   token=tok), 201)
    ok(jpost(client, f"/clinics/{cid}/branches/{far['branch_id']}/resources",
             {"kind": "mri", "name": "MRI 3T", "capacity": 1}, token=tok), 201)
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
             {"branch_id": far["branch_id"], "modality": "in_person", "weekday": "mon", "start": "08:00",
              "end": "10:00"}, token=tok), 201)
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
             {"branch_id": far["branch_id"], "modality": "in_person", "weekday": "tue", "start": "22:35",
              "end": "23:55"}, token=tok), 201)
    monday = slots(client, w)
    sakhalin = [s for s in monday if s["time_zone"] == "Asia/Sakhalin" and s["local"].startswith("2026-11-30T09:")]
    assert sakhalin and sakhalin[0]["start"].startswith("2026-11-29T22:")  # Sunday in UTC
    evening = [s for s in slots(client, w, day="2026-12-01") if s["local"].startswith("2026-12-01T23:")]
    assert evening and evening[0]["start"].startswith("2026-12-01T12:")
    morning = ok(book(client, w, w["patient"]["token"], sakhalin[0]["start"]), 201)
    late = ok(book(client, w, w["patient"]["token"], evening[0]["start"]), 201)
    kaliningrad = ok(book(client, w, w["patient"]["token"],
                          [s for s in monday if s["time_zone"] == "Europe/Kaliningrad"][0]["start"]), 201)

    def agenda(day, extra=""):
        page = ok(jpost(client, f"/me/agenda?date_from={day}&date_to={day}{extra}", token=w["doctor"]["token"],
                        method="get"))
        return {b["booking_id"] for b in page["items"]}

    def calendar(day, extra=""):
        page = ok(jpost(client, f"/clinics/{cid}/calendar?date_from={day}&date_to={day}{extra}", token=tok,
                        method="get"))
        return {b["booking_id"] for b in page["items"]}

    for view in (agenda, calendar):
        assert view("2026-11-30") == {morning["booking_id"], kaliningrad["booking_id"]}
        assert view("2026-11-29") == set()
        assert view("2026-12-01") == {late["booking_id"]}
        # in one chosen zone a visit falls on that zone's day: 22:00 UTC on Sunday is 00:00 on Monday in
        # Kaliningrad (UTC+2) and still Sunday in London
        assert morning["booking_id"] in view("2026-11-30", "&time_zone=Europe/Kaliningrad")
        assert view("2026-11-29", "&time_zone=Europe/London") == {morning["booking_id"]}
    r = jpost(client, "/me/agenda?date_from=2026-11-30&date_to=2026-11-30&time_zone=MSK", token=w["doctor"]["token"],
              method="get")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "time_zone"


# ------------------------------------------------------------------ a doctor who leaves a clinic

def test_a_removed_doctor_loses_the_clinic_at_once_and_the_clinic_decides_about_their_visits(client, outbox, w,
                                                                                            drain):
    cid, did = w["a"]["clinic_id"], w["doctor"]["user_id"]
    free = slots(client, w)
    kept = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    r = jpost(client, f"/clinics/{cid}/doctors/{did}", token=w["admin_a"]["token"], method="delete")
    assert r.status_code == 409 and body(r)["code"] == "doctor_has_future_bookings"
    assert [b["booking_id"] for b in body(r)["bookings"]] == [kept["booking_id"]]
    assert ok(jpost(client, f"/bookings/{kept['booking_id']}", token=w["doctor"]["token"], method="get"))
    r = jpost(client, f"/clinics/{cid}/doctors/{did}", {"future_bookings": "cancel"}, token=w["admin_a"]["token"],
              method="delete")
    assert r.status_code in (200, 204), r.body
    # at once: the doctor sees neither the booking nor the clinic's visits in the agenda
    assert jpost(client, f"/bookings/{kept['booking_id']}", token=w["doctor"]["token"], method="get").status_code == 404
    agenda = ok(jpost(client, f"/me/agenda?date_from={MONDAY}&date_to={MONDAY}", token=w["doctor"]["token"],
                      method="get"))
    assert agenda["items"] == []
    before = len(outbox.to(w["patient"]["phone"]))
    drain()
    visit = ok(jpost(client, f"/bookings/{kept['booking_id']}", token=w["patient"]["token"], method="get"))
    assert visit["status"] == "cancelled_by_clinic" and visit["cancellation"]["reason"] == "doctor_left_clinic"
    told = outbox.to(w["patient"]["phone"])[before:]
    assert len(told) == 1 and ("отменила" in told[0] or "cancelled" in told[0])
    assert drain().dead == 0


def test_the_shape_of_a_booking_is_written_down_in_one_place(client, outbox, w, drain):
    """Every attribute a stored booking carries is declared in models.Booking (keys aside)."""
    from chalicelib.booking import models as bm

    start = slots(client, w)[0]["start"]
    b = ok(book(client, w, w["patient"]["token"], start), 201)
    ok(cancel(client, w["patient"]["token"], b["booking_id"]))
    stored = store.get_booking(b["booking_id"])
    keys = {"PK", "SK", "type"} | {f"GSI{i}{k}" for i in range(1, 5) for k in ("PK", "SK")}
    assert set(stored) - keys <= set(bm.Booking.__annotations__)


# ------------------------------------------------------------------ found by an outside review

@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_far_dates_are_a_clear_422_everywhere_dates_are_asked(client, w, day):
    cid, did = w["a"]["clinic_id"], w["doctor"]["user_id"]
    for path, token in ((f"/me/agenda?date_from={day}&date_to={day}", w["doctor"]["token"]),
                        (f"/me/agenda?date_from={day}&date_to={day}&time_zone=Asia/Sakhalin", w["doctor"]["token"]),
                        (f"/clinics/{cid}/calendar?date_from={day}&date_to={day}", w["admin_a"]["token"]),
                        (f"/catalog/doctors/{did}/slots?clinic_id={cid}&service_id={w['service_id']}"
                         f"&date_from={day}&date_to={day}", None)):
        r = jpost(client, path, token=token, method="get")
        assert r.status_code == 422 and body(r)["errors"][0]["field"] in ("date_from", "date_to"), (path, r.body)
    r = jpost(client, "/waitlist", {"clinic_id": cid, "service_id": w["service_id"], "doctor_id": did,
                                    "date_from": day, "date_to": day}, token=w["patient"]["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] in ("date_from", "date_to")


def test_cancelling_an_offer_instead_of_declining_lets_the_entry_wait_again(client, outbox, w, drain):
    free = slots(client, w)
    first = ok(book(client, w, w["patient"]["token"], free[0]["start"]), 201)
    second = ok(book(client, w, w["patient"]["token"], free[1]["start"]), 201)
    waiting = patient(client, outbox, "+79130000161")
    waitlist(client, w, waiting)
    ok(cancel(client, w["patient"]["token"], first["booking_id"]))
    drain()
    offer = offers(client, waiting)[0]
    ok(cancel(client, waiting["token"], offer["booking_id"]))
    drain()
    assert [x["status"] for x in ok(jpost(client, "/me/waitlist", token=waiting["token"], method="get"))["items"]] \
        == ["waiting"]
    ok(cancel(client, w["patient"]["token"], second["booking_id"]))
    drain()
    assert [o["start"]["utc"] for o in offers(client, waiting)] == [free[1]["start"]]


def test_a_removed_doctors_calendar_feed_drops_that_clinic_at_once(client, w, drain):
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    url = ok(jpost(client, "/me/calendar-feed", token=w["doctor"]["token"], method="get"))["url"]
    path = url[url.index("/calendar/"):]
    assert "BEGIN:VEVENT" in client.http.get(path).body.decode()
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}",
              {"future_bookings": "keep_for_reassignment"}, token=w["admin_a"]["token"], method="delete")
    assert r.status_code in (200, 204), r.body
    assert "BEGIN:VEVENT" not in client.http.get(path).body.decode()
    assert b["booking_id"]


def test_no_function_can_outlive_an_event_lease():
    """A handler runs twice only if its lease lapses while it still runs: every Lambda stops before."""
    from chalicelib.core.events import LEASE_SECONDS
    from infra.stages import STAGES

    assert all(stage.lambda_timeout_s < LEASE_SECONDS for stage in STAGES.values())


def test_leaving_an_urgent_consultation_that_has_begun_is_no_late_cancellation(client, w, fixed_clock):
    """Its cancellation window is 0 h and it starts when taken: every cancel used to count as late (a strike)."""
    shift = {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": "2026-11-24T08:00",
             "ends_at": "2026-11-24T20:00"}
    ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/duty-shifts", shift,
             token=w["admin_a"]["token"]), 201)
    ok(jpost(client, "/urgent/cardiologist/queue", {"modality": "video"}, token=w["patient"]["token"]), 201)
    taken = ok(jpost(client, "/urgent/cardiologist/take", {}, token=w["doctor"]["token"]))
    fixed_clock.advance(minutes=5)
    left = ok(cancel(client, w["patient"]["token"], taken["booking"]["booking_id"]))
    assert left["status"] == "cancelled_by_patient" and left["cancellation"]["late"] is False
    patient_id = taken["patient_id"]
    assert db.get(*store.strikes_key(patient_id, w["a"]["clinic_id"])) is None
