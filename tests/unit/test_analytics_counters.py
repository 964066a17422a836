"""Analytics counters: a constructed month matches figures computed by hand; an event applied twice counts
once; a rebuild from the source items agrees with the live counters after a randomised month; local days
in Asia/Sakhalin, Europe/Kaliningrad and across a DST change; one clinic never sees another's figures; a
doctor sees their own figures and never a comment; bad input is a 4xx naming the field."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pytest

from chalicelib.core import db
from chalicelib.core.ids import new_id
from tests.conftest import body, jpost, log_in, relogin
from tests.unit.clinic_setup import ok, world

KGD = "Europe/Kaliningrad"


# ------------------------------------------------------------------ helpers: sources as other features write them

def raise_event(kind: str, data: dict[str, Any]) -> str:
    """An outbox event exactly as a feature's transaction writes it (``db.Tx().event``)."""
    tx = db.Tx()
    eid = tx.event(kind, data)
    tx.commit()
    return eid


def local_day(start: datetime, zone_name: str) -> str:
    from chalicelib.core.tz import zone

    return start.astimezone(zone(zone_name)).date().isoformat()


def put_booking(clinic_id: str, branch_id: str, doctor_id: str, start: datetime, status: str = "confirmed",
                kind: str = "scheduled", modality: str = "in_person", price: int = 300000, minutes: int = 30,
                patient_id: Optional[str] = None, zone_name: str = KGD, cancellation: Optional[dict] = None,
                resources: Optional[list] = None, queued_at: Optional[str] = None, service_id: Optional[str] = None,
                event: Optional[str] = None) -> dict[str, Any]:
    """A booking item of the shape booking/service.py writes, with its event in the same transaction."""
    from chalicelib.booking import store as booking_store

    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    b = {"booking_id": new_id(), "kind": kind, "patient_id": patient_id or new_id(), "doctor_id": doctor_id,
         "clinic_id": clinic_id, "branch_id": branch_id, "service_id": service_id or "01JSERVICE0000000000000000",
         "service": {"name": {"ru": "Приём", "en": "Visit"}, "duration_minutes": minutes, "modality": modality,
                     "price": {"amount": price, "currency": "RUB"} if price else None, "resource_kinds": []},
         "time_zone": zone_name, "start_utc": iso(start), "end_utc": iso(start + timedelta(minutes=minutes)),
         "local_day": local_day(start, zone_name), "status": status, "created_at": int(start.timestamp()),
         "version": 1, "locks": [], "resources": resources or []}
    if cancellation:
        b["cancellation"] = cancellation
    if queued_at:
        b["queued_at"] = queued_at
    tx = db.Tx().add("booking", booking_store.new_booking_op(b))
    tx.event(event or _event_of(status), {k: b[k] for k in ("booking_id", "kind", "status", "patient_id", "doctor_id",
                                                            "clinic_id", "branch_id", "start_utc", "end_utc",
                                                            "time_zone")})
    tx.commit()
    return b


def _event_of(status: str) -> str:
    return {"completed": "booking.completed", "no_show": "booking.no_show", "cancelled_by_patient":
            "booking.cancelled", "cancelled_by_clinic": "booking.cancelled", "expired": "booking.expired",
            "declined": "booking.declined"}.get(status, "booking.created")


def set_status(b: dict[str, Any], status: str, **changes: Any) -> dict[str, Any]:
    """Move a booking on (as the booking service does) with its event in the same transaction."""
    from chalicelib.booking import store as booking_store

    b = {**b, "status": status, **changes, "version": b["version"] + 1}
    tx = db.Tx().put("booking", booking_store.booking_item(b))
    tx.event(_event_of(status), {k: b[k] for k in ("booking_id", "status", "patient_id", "doctor_id", "clinic_id")})
    tx.commit()
    return b


def sign_conclusion(b: dict[str, Any], signed_at: datetime) -> None:
    from chalicelib.records import store as records_store

    at = signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    tx = db.Tx().put("conclusion", {"PK": records_store.card_pk(b["patient_id"]),
                                    "SK": records_store.conclusion_sk(b["booking_id"], 1), "type": "conclusion",
                                    "booking_id": b["booking_id"], "patient_id": b["patient_id"], "version": 1,
                                    "status": "signed", "signed_at": at, "clinic_id": b["clinic_id"],
                                    "doctor_id": b["doctor_id"]})
    tx.event("records.conclusion_signed", {"booking_id": b["booking_id"], "clinic_id": b["clinic_id"],
                                           "doctor_id": b["doctor_id"], "signed_at": at})
    tx.commit()


def give_feedback(b: dict[str, Any], score: int, comment: str = "") -> None:
    from chalicelib.notify import store as notify_store

    assert notify_store.add_feedback({"booking_id": b["booking_id"], "clinic_id": b["clinic_id"],
                                      "doctor_id": b["doctor_id"], "score": score, "comment": comment or None,
                                      "band": "promoters" if score >= 9 else "passives" if score >= 7 else "detractors",
                                      "created_at": b["end_utc"]})


def day_items(cid: str, first: str, last: str) -> dict[str, dict[str, int]]:
    from chalicelib.analytics import store

    return {i["SK"]: {k: v for k, v in i.items() if isinstance(v, int) and v}
            for i in store.days(cid, first, last)}


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def dashboard(client, w, query: str, token: Optional[str] = None):
    return jpost(client, f"/clinics/{w['a']['clinic_id']}/analytics?{query}",
                 token=token or w["admin_a"]["token"], method="get")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


# ------------------------------------------------------------------ a constructed month

def constructed_month(w) -> dict[str, Any]:
    cid, br, d1 = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"]
    d2 = new_id()
    p = new_id()
    made: dict[str, Any] = {"d1": d1, "d2": d2, "patient": p}
    done = [put_booking(cid, br, d1, at(2 + i, 8), "completed", patient_id=p if i == 0 else None)
            for i in range(3)]
    video = put_booking(cid, br, d1, at(6, 8), "completed", modality="video", price=200000)
    put_booking(cid, br, d1, at(9, 8), "no_show", patient_id=p)
    put_booking(cid, br, d1, at(10, 8), "cancelled_by_patient", cancellation={"by": "patient", "late": True})
    put_booking(cid, br, d1, at(11, 8), "cancelled_by_clinic",
                cancellation={"by": "clinic", "late": False, "reason": "doctor_leave"})
    put_booking(cid, br, d1, at(12, 8), "completed", kind="urgent", price=0, minutes=30,
                queued_at=(at(12, 8) - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    chats = [put_booking(cid, br, d2, at(16 + i, 9), "completed", modality="chat", price=100000) for i in range(2)]
    put_booking(cid, br, d2, at(20, 9), "confirmed", kind="waitlist")
    put_booking(cid, br, d2, at(21, 9), "confirmed", kind="invitation")
    for b, hours in zip(done + [video], (2, 10, 23, 30), strict=True):
        sign_conclusion(b, datetime.fromisoformat(b["end_utc"].replace("Z", "+00:00")) + timedelta(hours=hours))
    for b, score in zip(done, (10, 9, 6), strict=True):
        give_feedback(b, score, "Очень внимательный врач")
    give_feedback(chats[0], 8)
    pay = {"clinic_id": cid, "doctor_id": d1, "patient_id": p, "currency": "RUB", "cashback_spent": 0}
    raise_event("payment.succeeded", {**pay, "payment_id": new_id(), "booking_id": done[0]["booking_id"],
                                      "amount": 300000, "method": "online"})
    raise_event("payment.succeeded", {**pay, "payment_id": new_id(), "booking_id": done[1]["booking_id"],
                                      "amount": 300000, "method": "link"})
    raise_event("payment.succeeded", {**pay, "payment_id": new_id(), "booking_id": video["booking_id"],
                                      "amount": 200000, "method": "cash"})
    raise_event("payment.refunded", {**pay, "payment_id": new_id(), "refund_id": new_id(),
                                     "booking_id": done[1]["booking_id"], "amount": 100000, "refunded_total": 100000,
                                     "paid_amount": 300000, "reason": "requested_by_customer"})
    # the wallet earns by itself (its own cashback.earned): 10 %, the clinic's default, of the one paid visit
    # that is the paying patient's own (done[0]: 300,000); the others' payments name another patient than
    # their visit, which the wallet refuses. A spend as the wallet writes it:
    raise_event("wallet.spent", {"clinic_id": cid, "patient_id": p, "payment_id": new_id(), "amount": 2000,
                                 "currency": "RUB", "entry_id": new_id(), "at": "2026-11-20T10:00:00Z"})
    return made


def test_a_constructed_month_matches_the_figures_computed_by_hand(client, w, drain, fixed_clock):
    fixed_clock.set(at(30, 12))
    made = constructed_month(w)
    drain()
    relogin(client, w["admin_a"], fixed_clock)
    out = ok(dashboard(client, w, "period=month&date=2026-11-15"))
    assert out["period"] == {"date_from": "2026-11-01", "date_to": "2026-11-30", "kind": "month",
                             "time_zone": KGD}
    d1 = next(d for d in out["doctors"] if d["doctor_id"] == made["d1"])
    d2 = next(d for d in out["doctors"] if d["doctor_id"] == made["d2"])
    assert d1["visits"] == {"in_person": 3, "video": 1, "chat": 0, "urgent": 1, "total": 5}
    assert d1["sum"] == {"amount": 3 * 300000 + 200000, "currency": "RUB"}
    assert d1["no_shows"] == 1 and d1["late_cancellations"] == 1
    assert d1["conclusions"] == {"signed": 4, "within_24h": 3, "share_within_24h": 0.75}
    assert d1["nps"] == {"answers": 3, "average": 8.3, "nps": 33, "promoters": 2, "detractors": 1}
    assert d1["urgent"] == {"taken": 1, "median_wait_minutes": 12}
    # booked minutes: 5 completed + 1 no-show, 30 minutes each
    assert d1["fill"]["booked_minutes"] == 6 * 30
    assert d2["visits"]["chat"] == 2 and d2["sum"]["amount"] == 200000
    assert d2["nps"]["answers"] == 1 and d2["nps"]["nps"] == 0
    c = out["clinic"]
    assert c["bookings_by_source"] == {"app": 9, "invitation": 1, "waitlist": 1, "urgent": 1}
    assert c["cancellations"] == {"by": {"clinic": 1, "patient": 1}, "reasons": {"doctor_leave": 1, "none": 1},
                                  "late": 1}
    assert c["visits"] == 7 and c["no_shows"] == 1
    assert c["revenue"] == {"available": True, "online": {"amount": 600000, "currency": "RUB"},
                            "reception": {"amount": 200000, "currency": "RUB"},
                            "refunded": {"amount": 100000, "currency": "RUB"}, "payments": 3,
                            "share_prepaid": 0.6667}
    assert c["cashback"] == {"available": True, "earned": {"amount": 30000, "currency": "RUB"},
                             "spent": {"amount": 2000, "currency": "RUB"},
                             "expired": {"amount": 0, "currency": "RUB"},
                             "outstanding": {"amount": 28000, "currency": "RUB"}}
    assert c["nps"]["answers"] == 4 and c["nps"]["average"] == 8.2
    assert "comment" not in dashboard(client, w, "period=month&date=2026-11-15").body.decode()
    # a week and a day are parts of the same counters
    week = ok(dashboard(client, w, "period=week&date=2026-11-04"))  # Monday 2 to Sunday 8 November
    assert week["period"]["date_from"] == "2026-11-02" and week["period"]["date_to"] == "2026-11-08"
    assert next(d for d in week["doctors"] if d["doctor_id"] == made["d1"])["visits"]["total"] == 4
    day = ok(dashboard(client, w, f"period=day&date=2026-11-09&doctor_id={made['d1']}"))
    assert [d["no_shows"] for d in day["doctors"]] == [1]
    assert len(day["series"]) == 1


def test_an_event_applied_twice_counts_once(client, w, drain, fixed_clock):
    from chalicelib import bootstrap
    from chalicelib.core import events

    fixed_clock.set(at(30, 12))
    constructed_month(w)
    cid = w["a"]["clinic_id"]
    drain()
    before = day_items(cid, "2026-11-01", "2026-11-30")
    # every handler run again, as a consumer that died after its write but before recording success would
    handlers = bootstrap.outbox().handlers
    eids = [i["event_id"] for i in _all_events()]
    assert len(eids) > 20
    for eid in eids:
        event = events.get_event(eid)
        for name, fn in handlers.get(event["kind"], []):
            if name == "analytics":
                fn(event)
    assert day_items(cid, "2026-11-01", "2026-11-30") == before


def _all_events() -> list[dict[str, Any]]:
    """Every event item in the test's table (a Scan: tests inspect the table, the application never does)."""
    out, start = [], None
    while True:
        kw = {"ExclusiveStartKey": start} if start else {}
        resp = db.ddb().scan(TableName=db.table_name(), FilterExpression="#t = :e",
                             ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues=db.values(e="event"),
                             **kw)
        out += [db.from_item(i) for i in resp.get("Items", [])]
        start = resp.get("LastEvaluatedKey")
        if not start:
            return out


# ------------------------------------------------------------------ rebuild

def test_after_a_randomised_month_the_rebuilt_counters_agree_with_the_live_ones(client, w, drain, fixed_clock):
    from chalicelib import bootstrap
    from chalicelib.core import events

    fixed_clock.set(at(30, 23))
    rng = random.Random(1405)
    cid, br = w["a"]["clinic_id"], w["a"]["branch_id"]
    doctors = [w["doctor"]["user_id"], new_id(), new_id()]
    patients = [new_id() for _ in range(40)]
    made = []
    for _ in range(160):  # more than a page of the clinic's calendar (100)
        start = at(rng.randint(1, 30), rng.choice((6, 7, 8, 9, 10, 20, 21, 22, 23)), rng.choice((0, 30)))
        b = put_booking(cid, br, rng.choice(doctors), start, "confirmed", patient_id=rng.choice(patients),
                        kind=rng.choice(("scheduled", "scheduled", "invitation", "waitlist")),
                        modality=rng.choice(("in_person", "video", "chat")), price=rng.choice((0, 150000, 300000)),
                        minutes=rng.choice((30, 45, 60)))
        made.append(b)
    for b in made:
        roll = rng.random()
        if roll < 0.5:
            b = set_status(b, "completed")
            if rng.random() < 0.7:
                end = datetime.fromisoformat(b["end_utc"].replace("Z", "+00:00"))
                sign_conclusion(b, end + timedelta(hours=rng.choice((1, 20, 30, 50))))
            if rng.random() < 0.5:
                give_feedback(b, rng.randint(0, 10))
        elif roll < 0.6:
            set_status(b, "no_show")
        elif roll < 0.8:
            by = rng.choice(("patient", "clinic"))
            set_status(b, f"cancelled_by_{by}", cancellation={"by": by, "late": by == "patient" and rng.random() < 0.5,
                                                              "reason": rng.choice((None, "doctor_leave", "free text"))})
    # the consumer sees some events twice, in any order
    handlers = bootstrap.outbox().handlers
    evs = [events.get_event(i["event_id"]) for i in _all_events()]
    rng.shuffle(evs)
    for event in evs + evs[: len(evs) // 3]:
        for name, fn in handlers.get(event["kind"], []):
            if name == "analytics":
                fn(event)
    live = day_items(cid, "2026-11-01", "2026-11-30")
    assert sum(v for d in live.values() for k, v in d.items() if "|done|" in k) == \
        sum(1 for i in _bookings(cid) if i["status"] == "completed")
    result = bootstrap.analytics().rebuild(cid, datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date())
    assert result["bookings"] == sum(1 for b in made if "2026-11-01" <= b["local_day"] <= "2026-11-30") > 150
    assert day_items(cid, "2026-11-01", "2026-11-30") == live
    # a rebuild also repairs counters that drifted (here: a day's counter damaged by hand)
    from chalicelib.analytics import store

    sk = sorted(live)[3]
    store.put_day(cid, sk[4:], {"d|nobody|done|video": 99})
    bootstrap.analytics().rebuild(cid, datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date())
    assert day_items(cid, "2026-11-01", "2026-11-30") == live


def _bookings(cid: str) -> list[dict[str, Any]]:
    from chalicelib.analytics import access

    return access.clinic_calendar(cid, "2026-10-01T00:00:00Z", "2026-12-31T00:00:00Z")


def test_the_rebuild_command_line_and_admin_tooling(client, w, drain, fixed_clock, capsys):
    from chalicelib.analytics import rebuild

    fixed_clock.set(at(30, 12))
    constructed_month(w)
    drain()
    before = day_items(w["a"]["clinic_id"], "2026-11-01", "2026-11-30")
    assert rebuild.main(["--clinic", w["a"]["clinic_id"], "--from", "2026-11-01", "--to", "2026-11-30"]) == 0
    assert '"bookings": 12' in capsys.readouterr().out
    assert day_items(w["a"]["clinic_id"], "2026-11-01", "2026-11-30") == before
    assert rebuild.main(["--clinic", w["a"]["clinic_id"], "--from", "2026-11-30", "--to", "2026-11-01"]) == 2


# ------------------------------------------------------------------ local days

@pytest.mark.parametrize("zone_name, moment, day", [
    ("Asia/Sakhalin", datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc), "2026-12-01"),   # UTC+11
    ("Asia/Sakhalin", datetime(2026, 11, 30, 12, 59, tzinfo=timezone.utc), "2026-11-30"),
    ("Europe/Kaliningrad", datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc), "2026-12-01"),  # UTC+2
    ("Europe/Kaliningrad", datetime(2026, 11, 30, 21, 59, tzinfo=timezone.utc), "2026-11-30"),
    ("Europe/Berlin", datetime(2026, 10, 25, 22, 30, tzinfo=timezone.utc), "2026-10-25"),  # after the fall back
    ("Europe/Berlin", datetime(2026, 10, 24, 22, 30, tzinfo=timezone.utc), "2026-10-25"),  # before it (CEST)
    ("Europe/Berlin", datetime(2026, 3, 29, 22, 30, tzinfo=timezone.utc), "2026-03-30"),  # after spring forward
    ("Europe/Berlin", datetime(2026, 3, 28, 22, 30, tzinfo=timezone.utc), "2026-03-28"),  # before it (CET)
])
def test_money_counts_on_the_local_day_of_the_visits_zone(client, w, fixed_clock, zone_name, moment, day):
    from chalicelib import bootstrap
    from chalicelib.analytics import store

    cid = w["a"]["clinic_id"]
    b = put_booking(cid, w["a"]["branch_id"], w["doctor"]["user_id"], moment, zone_name=zone_name)
    fixed_clock.set(moment)
    eid = raise_event("payment.succeeded", {"payment_id": new_id(), "booking_id": b["booking_id"],
                                            "clinic_id": cid, "patient_id": b["patient_id"],
                                            "doctor_id": b["doctor_id"], "amount": 1000, "currency": "RUB",
                                            "method": "card_terminal", "cashback_spent": 0})
    from chalicelib.core import events

    bootstrap.analytics().apply_payment(events.get_event(eid))
    days = {sk: v for sk, v in day_items(cid, "2026-01-01", "2026-12-31").items() if "c|pay_n" in v}
    assert list(days) == [store.day_sk(day)]


def test_visits_count_on_their_branchs_local_day_and_a_month_takes_exactly_its_days(client, w, drain, fixed_clock):
    cid, br, did = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"]
    fixed_clock.set(datetime(2026, 12, 2, 12, tzinfo=timezone.utc))
    # 22:30 UTC on 30 November is 00:30 on 1 December in Kaliningrad: December's
    put_booking(cid, br, did, datetime(2026, 11, 30, 22, 30, tzinfo=timezone.utc), "completed")
    put_booking(cid, br, did, datetime(2026, 11, 30, 21, 30, tzinfo=timezone.utc), "completed")
    drain()
    relogin(client, w["admin_a"], fixed_clock)
    nov = ok(dashboard(client, w, "period=month&date=2026-11-01"))
    dec = ok(dashboard(client, w, "period=month&date=2026-12-01"))
    assert nov["clinic"]["visits"] == 1 and dec["clinic"]["visits"] == 1
    assert dec["series"][0] == {**dec["series"][0], "date": "2026-12-01", "visits": 1}


# ------------------------------------------------------------------ honesty, isolation, roles, bad input

def test_money_is_not_available_until_a_payment_event_was_seen(client, w, drain, fixed_clock):
    fixed_clock.set(at(30, 12))
    put_booking(w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"], at(3, 8), "completed")
    drain()
    relogin(client, w["admin_a"], fixed_clock)
    c = ok(dashboard(client, w, "period=month&date=2026-11-01"))["clinic"]
    assert c["revenue"] == {"available": False} and c["cashback"] == {"available": False}
    assert c["visits"] == 1


def test_one_clinic_never_sees_anothers_figures_and_a_doctor_never_sees_comments(client, outbox, w, drain,
                                                                                 fixed_clock):
    fixed_clock.set(at(30, 12))
    made = constructed_month(w)
    drain()
    for who in ("admin_a", "admin_b", "doctor"):
        relogin(client, w[who], fixed_clock)
    # another clinic's administrator: 404, as for a clinic that does not exist
    r = dashboard(client, w, "period=month&date=2026-11-01", token=w["admin_b"]["token"])
    assert r.status_code == 404
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/analytics/segments?kind=strikes",
              token=w["admin_b"]["token"], method="get")
    assert r.status_code == 404
    # clinic B's own dashboard holds nothing of A's
    own = ok(jpost(client, f"/clinics/{w['b']['clinic_id']}/analytics?period=month&date=2026-11-01",
                   token=w["admin_b"]["token"], method="get"))
    assert own["doctors"] == [] and own["clinic"]["visits"] == 0 and own["clinic"]["revenue"] == {"available": False}
    # a doctor reads no clinic dashboard, and their own view has their figures only, never a comment
    r = dashboard(client, w, "period=month&date=2026-11-01", token=w["doctor"]["token"])
    assert r.status_code == 403
    mine = jpost(client, f"/me/analytics?clinic_id={w['a']['clinic_id']}&period=month&date=2026-11-01",
                 token=w["doctor"]["token"], method="get")
    me = ok(mine)
    assert me["me"]["doctor_id"] == made["d1"] and me["me"]["visits"]["total"] == 5
    assert me["me"]["nps"]["answers"] == 3
    assert "comment" not in mine.body.decode() and "внимательный" not in mine.body.decode()
    assert made["d2"] not in mine.body.decode() and "clinic" not in me
    r = jpost(client, f"/me/analytics?clinic_id={w['b']['clinic_id']}&period=month", token=w["doctor"]["token"],
              method="get")
    assert r.status_code == 404
    r = jpost(client, f"/me/analytics?clinic_id={w['a']['clinic_id']}&doctor_id={made['d2']}",
              token=w["doctor"]["token"], method="get")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "doctor_id"
    patient = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    r = jpost(client, f"/me/analytics?clinic_id={w['a']['clinic_id']}", token=patient, method="get")
    assert r.status_code == 403


@pytest.mark.parametrize("query, field", [
    ("period=custom&date_from=2026-11-30&date_to=2026-11-01", "date_to,date_from"),
    ("period=custom&date_from=2025-01-01&date_to=2026-11-01", "date_to"),
    ("period=custom&date_from=2026-11-01", "date_to"),
    ("period=quarter", "period"),
    ("period=day&date=2026-13-01", "date"),
    ("period=month&date_from=2026-11-01", "date_from"),
    ("doctor_id=01JAAAAAAAAAAAAAAAAAAAAAAA", "doctor_id"),
    ("doctor_id=nope", "doctor_id"),
    ("branch_id=x", "branch_id"),
    ("colour=red", "colour"),
])
def test_bad_input_is_a_4xx_naming_the_field(client, w, fixed_clock, query, field):
    r = dashboard(client, w, query)
    assert r.status_code == 422, r.body
    assert [e["field"] for e in body(r)["errors"]] == field.split(",")
