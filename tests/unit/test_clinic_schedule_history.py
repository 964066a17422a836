"""Duty shift history leaves the hot path: a doctor with two years of past shifts still shows the
weekly template, and a schedule read takes only what overlaps the dates asked for."""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.core import clock
from tests.conftest import jpost
from tests.unit.clinic_setup import ok, world


def test_two_years_of_past_shifts_stay_out_of_the_schedule_read(client, outbox, fixed_clock, ddb_calls):
    from chalicelib.clinics import store

    w = world(client, outbox, fixed_clock)
    cid, did, bid, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["a"]["branch_id"], w["admin_a"]["token"]
    now = fixed_clock.now()
    for day in range(730, 0, -1):  # a night shift every day for two years, all over
        start = now - timedelta(days=day, hours=-12)
        store.put_schedule_item(store.duty_shift_item(did, cid, bid, "cardiologist", "Europe/Kaliningrad",
                                                      start, start + timedelta(hours=8), clock.epoch()))
    shift = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/duty-shifts",
                     {"branch_id": bid, "specialty": "cardiologist", "starts_at": "2026-12-02T20:00",
                      "ends_at": "2026-12-03T06:00"}, token=tok), 201)

    window = store.schedule_for(did, clock.iso(now), clock.iso(now + timedelta(days=14)))
    assert sorted(i["type"] for i in window) == ["duty_shift", "schedule_template"]
    later = store.schedule_for(did, clock.iso(now + timedelta(days=30)), clock.iso(now + timedelta(days=44)))
    assert [i["type"] for i in later] == ["schedule_template"]
    # the last week of history is there for whoever asks for it, and nothing older
    week = store.schedule_for(did, clock.iso(now - timedelta(days=7)), clock.iso(now))
    assert sum(1 for i in week if i["type"] == "duty_shift") == 7

    view = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/schedule", token=tok, method="get"))
    assert len(view["templates"]) == 1 and [s["item_id"] for s in view["duty_shifts"]] == [shift["item_id"]]

    # every dated item expires 30 days after it ends (TTL frees the space; reads never rely on it)
    item = store.get_schedule_item(did, "DUTY", shift["item_id"])
    assert item["expires_at"] == int((datetime.fromisoformat(item["ends_at_utc"].replace("Z", "+00:00")) + timedelta(days=30)).timestamp())

    # a new template is checked against the schedule ahead, not against two years of history
    ddb_calls.reset()
    ok(jpost(client, f"/clinics/{cid}/doctors/{did}/templates",
             {"branch_id": bid, "modality": "video", "weekday": "wed", "start": "09:00", "end": "10:00"},
             token=tok), 201)
    assert ddb_calls.calls.count("Query") <= 6, ddb_calls.calls

    # a shift is deleted by its id, wherever its end puts it in the sort order
    assert jpost(client, f"/clinics/{cid}/doctors/{did}/duty-shifts/{shift['item_id']}", token=tok,
                 method="delete").status_code == 204
    view = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/schedule", token=tok, method="get"))
    assert view["duty_shifts"] == [] and len(view["templates"]) == 2


def test_exceptions_are_dated_and_deleted_by_id(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, did, tok = w["a"]["clinic_id"], w["doctor"]["user_id"], w["admin_a"]["token"]
    leave = ok(jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions",
                     {"kind": "leave", "date_from": "2027-01-01", "date_until": "2027-01-02"}, token=tok), 201)
    from chalicelib.clinics import store

    item = store.get_schedule_item(did, "EXCEPTION", leave["item_id"])
    assert item["SK"].startswith("EXCEPTION#2027-01-0")
    assert jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions/{leave['item_id']}", token=tok,
                 method="delete").status_code == 204
    assert store.get_schedule_item(did, "EXCEPTION", leave["item_id"]) is None
    assert jpost(client, f"/clinics/{cid}/doctors/{did}/exceptions/{leave['item_id']}", token=tok,
                 method="delete").status_code == 404


def test_items_under_the_old_keys_are_moved_once(client, outbox, fixed_clock):
    """Shifts and exceptions written before the dated keys are invisible to a dated read until moved."""
    from chalicelib.clinics import store
    from chalicelib.core import db
    from chalicelib.core.ids import new_id

    w = world(client, outbox, fixed_clock)
    cid, did, bid = w["a"]["clinic_id"], w["doctor"]["user_id"], w["a"]["branch_id"]
    sid, xid = new_id(), new_id()
    db.put_new({"PK": store.doctor_pk(did), "SK": f"DUTY#{sid}", "type": "duty_shift", "item_id": sid,
                "doctor_id": did, "clinic_id": cid, "branch_id": bid, "specialty": "cardiologist",
                "time_zone": "Europe/Kaliningrad", "starts_at": "2026-12-02T20:00", "ends_at": "2026-12-03T06:00",
                "starts_at_utc": "2026-12-02T18:00:00Z", "ends_at_utc": "2026-12-03T04:00:00Z", "created_at": 1})
    db.put_new({"PK": store.doctor_pk(did), "SK": f"EXCEPTION#{xid}", "type": "schedule_exception", "item_id": xid,
                "doctor_id": did, "clinic_id": cid, "kind": "leave", "date_from": "2027-01-01",
                "date_until": "2027-01-02", "created_at": 1})
    now = clock.iso(fixed_clock.now())
    assert [i["type"] for i in store.schedule_for(did, now, store.FOREVER)] == ["schedule_template"]
    assert store.rekey_legacy_schedule(did) == 2
    assert store.rekey_legacy_schedule(did) == 0
    found = store.schedule_for(did, now, store.FOREVER)
    assert sorted(i["item_id"] for i in found if i["type"] != "schedule_template") == sorted([sid, xid])
    assert store.get_schedule_item(did, "DUTY", sid)["SK"] == f"DUTY#2026-12-03T04:00:00Z#{sid}"
