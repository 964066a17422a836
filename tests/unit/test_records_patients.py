"""A doctor's "my patients": patients with a live grant to the doctor or to a clinic they work in, or under an
observation the doctor set, with the grant's scope and end, the observation's end and the next visit; one
query per page, rows kept by the events that change them (drained here as the outbox would)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import body, jpost, relogin
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import invite_doctor, ok
from tests.unit.records_world import backend_env, grant, records_module, records_world, visited_world  # noqa: F401  (one world per module)
from tests.unit.test_records_conclusions import FULL


def later(fixed_clock, **delta) -> str:
    return (fixed_clock.now() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rows(client, who, limit=100) -> list[dict]:
    out, cursor = [], None
    while True:
        q = f"/me/patients?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(jpost(client, q, token=who["token"], method="get"))
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def row_of(client, who, pid):
    found = [r for r in rows(client, who) if r["patient_id"] == pid]
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.fixture
def w(client, outbox, fixed_clock):
    return records_world(client, outbox, fixed_clock)


def test_more_than_a_page_of_patients_one_query_a_page_every_patient_once(client, w, fixed_clock, drain, ddb_calls):
    from chalicelib import bootstrap
    from chalicelib.core.ids import new_id
    from chalicelib.core.web import Caller
    from chalicelib.records import models as rm

    svc = bootstrap.records()
    until = fixed_clock.now() + timedelta(days=30)
    pids = [new_id() for _ in range(130)]
    for i, pid in enumerate(pids):  # 130 patients open their cards, ending on different days
        svc.grant(Caller(pid, "patient", "s"), rm.GrantIn(doctor_id=w["doctor"]["user_id"],
                                                          until=until + timedelta(hours=i)))
    grant(client, w["patient"]["token"], later(fixed_clock, days=2), doctor_id=w["doctor"]["user_id"])
    drain()
    seen, cursor, pages = [], None, 0
    while True:
        q = "/me/patients?limit=50" + (f"&cursor={cursor}" if cursor else "")
        ddb_calls.reset()
        page = ok(jpost(client, q, token=w["doctor"]["token"], method="get"))
        assert ddb_calls.calls == ["GetItem", "Query"], ddb_calls.calls  # the session, one query of the page
        seen += [r["patient_id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 131
    assert set(seen) == set(pids) | {w["patient"]["user_id"]}
    assert seen[0] == w["patient"]["user_id"]  # soonest-ending first
    mine = next(r for r in rows(client, w["doctor"]) if r["patient_id"] == w["patient"]["user_id"])
    assert mine["name"] == {"first_name": "Анна", "last_name": "Петрова"}
    assert rows(client, w["doctor_b"]) == []  # another doctor's list is another list
    first = ok(jpost(client, "/me/patients?limit=50", token=w["doctor"]["token"], method="get"))
    r = jpost(client, f"/me/patients?limit=50&cursor={first['next_cursor']}", token=w["doctor_b"]["token"],
              method="get")
    assert r.status_code == 400 and body(r)["errors"][0]["field"] == "cursor"  # bound to the doctor's list


def test_a_doctor_grant_shows_scope_end_and_next_visit_and_drops_out_when_revoked_or_ended(client, w, fixed_clock,
                                                                                          drain):
    d, pid, t = w["doctor"], w["patient"]["user_id"], w["patient"]["token"]
    g = grant(client, t, later(fixed_clock, days=3), doctor_id=d["user_id"], sections=["medications", "allergies"])
    assert row_of(client, d, pid) is None  # the row comes with the event's handler
    drain()
    r = row_of(client, d, pid)
    assert r["grant"] == {"grant_ids": [g["grant_id"]], "sections": ["allergies", "medications"],
                          "until": g["until"], "via": ["doctor"]}
    assert r["observation_end"] is None
    assert r["next_visit"]["booking_id"] == w["visit"]["booking_id"]  # the booked Monday visit
    assert r["next_visit"]["start"]["utc"] == w["visit"]["start"]["utc"]
    assert r["next_visit"]["start"]["time_zone"] == "Europe/Kaliningrad"

    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    drain()
    assert row_of(client, d, pid) is None  # revoked: off the list

    grant(client, t, later(fixed_clock, hours=2), doctor_id=d["user_id"])
    drain()
    assert row_of(client, d, pid)["grant"]["sections"] == ["allergies", "vaccinations", "conditions", "medications",
                                                           "notes", "conclusions", "documents"]
    fixed_clock.advance(hours=2, seconds=1)  # ended: off the list at once, no event needed
    relogin(client, d, fixed_clock)
    assert row_of(client, d, pid) is None


def test_next_visit_follows_bookings_with_this_doctor_cancelled_ones_never(client, w, fixed_clock, drain):
    d, pid, t = w["doctor"], w["patient"]["user_id"], w["patient"]["token"]
    grant(client, t, later(fixed_clock, days=60), doctor_id=d["user_id"])
    drain()
    first = w["visit"]
    assert row_of(client, d, pid)["next_visit"]["booking_id"] == first["booking_id"]
    nxt_monday = slots(client, w, day="2026-12-07")[0]["start"]
    second = ok(book(client, w, t, nxt_monday), 201)
    drain()
    assert row_of(client, d, pid)["next_visit"]["booking_id"] == first["booking_id"]  # still the sooner one
    ok(jpost(client, f"/bookings/{first['booking_id']}/cancel", {}, token=t))
    drain()
    assert row_of(client, d, pid)["next_visit"]["booking_id"] == second["booking_id"]
    ok(jpost(client, f"/bookings/{second['booking_id']}/cancel", {}, token=t))
    drain()
    r = row_of(client, d, pid)
    assert r["next_visit"] is None and r["grant"] is not None  # still listed by the grant


def test_a_clinic_grant_reaches_its_doctors_only_and_follows_who_works_there(client, w, fixed_clock, drain, outbox):
    d, db_, pid, t = w["doctor"], w["doctor_b"], w["patient"]["user_id"], w["patient"]["token"]
    g = grant(client, t, later(fixed_clock, days=10), clinic_id=w["a"]["clinic_id"], sections=["allergies"])
    drain()
    r = row_of(client, d, pid)
    assert r["grant"]["via"] == ["clinic"] and r["grant"]["clinic_ids"] == [w["a"]["clinic_id"]]
    assert r["grant"]["sections"] == ["allergies"]
    assert row_of(client, db_, pid) is None  # clinic B's doctor never sees clinic A's grant's patient

    # clinic B's doctor joins clinic A too: the grant reaches them now (one row, the grant via clinic A)
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_a"], w["a"]["clinic_id"], db_)
    drain()
    assert row_of(client, db_, pid)["grant"]["grant_ids"] == [g["grant_id"]]
    # a doctor grant of their own as well: one row, both grants, the scopes joined
    g2 = grant(client, t, later(fixed_clock, days=20), doctor_id=db_["user_id"], sections=["notes"])
    drain()
    both = row_of(client, db_, pid)["grant"]
    assert set(both["grant_ids"]) == {g["grant_id"], g2["grant_id"]} and both["sections"] == ["allergies", "notes"]
    assert both["via"] == ["clinic", "doctor"]

    # clinic A removes them: its grant no longer reaches them, their own grant still does
    relogin(client, w["admin_a"], fixed_clock)
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{db_['user_id']}", {"future_bookings": "cancel"},
              token=w["admin_a"]["token"], method="delete")
    assert r.status_code == 204, r.body
    drain()
    left = row_of(client, db_, pid)["grant"]
    assert left["grant_ids"] == [g2["grant_id"]] and left["sections"] == ["notes"] and left["via"] == ["doctor"]
    assert row_of(client, d, pid)["grant"]["grant_ids"] == [g["grant_id"]]

    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    drain()
    assert row_of(client, d, pid) is None


def test_an_observation_lists_the_patient_until_it_ends_without_a_grant(client, outbox, fixed_clock, drain):
    w = visited_world(client, outbox, fixed_clock)
    d, pid = w["doctor"], w["patient"]["user_id"]
    C = f"/bookings/{w['visit']['booking_id']}/conclusion"
    ok(jpost(client, C, FULL, token=d["token"], method="put"))  # observation_months 6
    drain()
    assert row_of(client, d, pid) is None  # a draft sets nothing
    ok(jpost(client, f"{C}/sign", {}, token=d["token"]))
    drain()
    r = row_of(client, d, pid)
    visit_day = w["visit"]["start"]["local"][:10]  # 2026-11-30 in Kaliningrad
    assert visit_day == "2026-11-30" and r["observation_end"] == "2027-05-30"
    assert r["grant"] is None and r["next_visit"] is None  # the visit is done; nothing opened to them
    assert row_of(client, w["doctor_b"], pid) is None
    assert jpost(client, f"/patients/{pid}/card/export", token=d["token"], method="get").status_code == 404

    ok(jpost(client, f"{C}/amendments", {**{k: v for k, v in FULL.items() if k != "observation_months"},
                                         "follow_up_date": "2027-01-15"}, token=d["token"]), 201)
    drain()
    assert row_of(client, d, pid)["observation_end"] == "2027-01-15"
    # the end is the last day, in the visit's zone: listed through 15 January Kaliningrad time, gone after
    fixed_clock.set(datetime.fromisoformat("2027-01-15T21:59:00+00:00"))  # 23:59 in Kaliningrad (UTC+2)
    relogin(client, d, fixed_clock)
    assert row_of(client, d, pid)["observation_end"] == "2027-01-15"
    fixed_clock.set(datetime.fromisoformat("2027-01-15T22:00:30+00:00"))
    relogin(client, d, fixed_clock)
    assert row_of(client, d, pid) is None


def test_grant_and_read_are_events_written_with_their_change(client, w, fixed_clock):
    from chalicelib import bootstrap
    from chalicelib.core import clock

    def pending(kind):
        return [e["data"] for e in bootstrap.outbox().due(clock.now() + timedelta(days=1), 1000) if e["kind"] == kind]

    pid, t = w["patient"]["user_id"], w["patient"]["token"]
    g = grant(client, t, later(fixed_clock, days=3), doctor_id=w["doctor"]["user_id"], sections=["allergies"])
    made = pending("records.grant_created")
    assert [(e["patient_id"], e["grant_id"], e["doctor_id"]) for e in made] == \
        [(pid, g["grant_id"], w["doctor"]["user_id"])]
    assert jpost(client, f"/patients/{pid}/card", token=w["doctor_b"]["token"], method="get").status_code == 404
    assert pending("records.card_read") == []  # a denied read: no event
    ok(jpost(client, f"/patients/{pid}/card", token=w["doctor"]["token"], method="get"))
    read = pending("records.card_read")
    assert [(e["patient_id"], e["reader_id"], e["grant_ids"]) for e in read] == \
        [(pid, w["doctor"]["user_id"], [g["grant_id"]])]
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)  # again: nothing more
    assert [e["grant_id"] for e in pending("records.grant_revoked")] == [g["grant_id"]]


def test_my_patients_is_for_doctors(client, w):
    for who in ("patient", "admin_a", "platform"):
        assert jpost(client, "/me/patients", token=w[who]["token"], method="get").status_code == 403
    r = jpost(client, "/me/patients?limit=101", token=w["doctor"]["token"], method="get")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "limit"


def test_the_patient_is_told_when_the_card_is_opened_and_when_someone_reads_it(client, w, fixed_clock, drain):
    """The records events notify handles, as records writes them (not hand-made events): a grant tells the
    patient once; a doctor's reads of the shared card tell the patient once per reader and day; the texts
    name nothing of the card."""
    from tests.unit.records_world import SECRETS, fill_card

    fill_card(client, w["patient"]["token"])
    g = grant(client, w["patient"]["token"], later(fixed_clock, days=10), doctor_id=w["doctor"]["user_id"])
    drain()
    for _ in range(2):
        ok(jpost(client, f"/patients/{w['patient']['user_id']}/card", token=w["doctor"]["token"], method="get"))
    ok(jpost(client, "/me/card", token=w["patient"]["token"], method="get"))  # the patient's own read
    drain()
    drain()  # a second run of the consumers sends nothing again
    inbox = ok(jpost(client, "/me/inbox?limit=50", token=w["patient"]["token"], method="get"))["items"]
    kinds = [m["kind"] for m in inbox]
    assert kinds.count("record_shared") == 1 and kinds.count("record_viewed") == 1, kinds
    shared = next(m for m in inbox if m["kind"] == "record_shared")
    assert shared["link"] == "records/access"
    text = " ".join(m["title"] + " " + m["text"] for m in inbox)
    assert not [s for s in SECRETS if s in text]
    assert g["grant_id"] not in text
    other = ok(jpost(client, "/me/inbox?limit=50", token=w["other"]["token"], method="get"))["items"]
    assert not [m for m in other if m["kind"] in ("record_shared", "record_viewed")]


def test_reads_are_told_once_per_reader_and_day_of_the_patients_own_calendar(client, w, fixed_clock, drain):
    """A patient in Vladivostok (UTC+10): reads at 13:00 and 15:00 UTC are 23:00 and 01:00 there, two days of
    the patient's calendar, so two messages; a read at 23:00 UTC (09:00 there) is the second local day again.
    Each read counts on the day it happened, however late the consumer runs."""
    from datetime import timezone

    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    ok(jpost(client, "/me/notification-settings", {"time_zone": "Asia/Vladivostok", "quiet_hours": None},
             token=t, method="put"))
    grant(client, t, later(fixed_clock, days=10), doctor_id=w["doctor"]["user_id"])
    drain()
    day = fixed_clock.now().date() + timedelta(days=1)
    for hour in (13, 15, 23):
        fixed_clock.set(datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc))
        relogin(client, w["doctor"], fixed_clock)
        ok(jpost(client, f"/patients/{pid}/card", token=w["doctor"]["token"], method="get"))
    drain()  # the consumer runs after all three reads: each still counts on its own day
    from chalicelib.notify import store as notify_store

    inbox, _ = notify_store.inbox_page(pid, 50, None)  # what the patient's /me/inbox lists
    assert [m["kind"] for m in inbox].count("record_viewed") == 2


def test_without_a_zone_of_their_own_a_patients_day_is_the_reading_clinics(client, w, fixed_clock, drain):
    """No zone chosen and no device, the card opened to clinic A (Kaliningrad, UTC+2): the day is the clinic's,
    so 21:30 and 22:30 UTC are 23:30 and 00:30 there, two days; a UTC cut would make them one."""
    from datetime import timezone

    from chalicelib.notify import store as notify_store

    pid = w["patient"]["user_id"]
    grant(client, w["patient"]["token"], later(fixed_clock, days=10), clinic_id=w["a"]["clinic_id"])
    drain()
    day = fixed_clock.now().date() + timedelta(days=1)
    for hour in (21, 22):
        fixed_clock.set(datetime(day.year, day.month, day.day, hour, 30, tzinfo=timezone.utc))
        relogin(client, w["doctor"], fixed_clock)
        ok(jpost(client, f"/patients/{pid}/card", token=w["doctor"]["token"], method="get"))
    drain()
    inbox, _ = notify_store.inbox_page(pid, 50, None)
    assert [m["kind"] for m in inbox].count("record_viewed") == 2
