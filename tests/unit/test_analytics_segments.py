"""Segments for recalls (lapsed, strikes, spend), their CSV export (opens in a spreadsheet with Russian text),
a recall sent through the notification service once per patient, and the dashboard's read budget: a month
for a clinic of 20 doctors in at most 3 queries, however many bookings it had."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.core.ids import new_id
from tests.conftest import body, jpost, log_in, relogin
from tests.unit.clinic_setup import ok, world
from tests.unit.test_analytics_counters import at, put_booking, raise_event


@pytest.fixture
def w(client, outbox, fixed_clock):
    return world(client, outbox, fixed_clock)


def test_a_month_for_twenty_doctors_is_read_in_at_most_three_queries(client, w, drain, fixed_clock, ddb_calls):
    from chalicelib.analytics import store as astore
    from tests.integration.budget_world import batch_put

    cid = w["a"]["clinic_id"]
    doctors = [new_id() for _ in range(20)]
    batch_put([{"PK": astore.day_pk(cid), "SK": astore.day_sk(f"2026-11-{d:02d}"), "type": "analytics_day",
                **{f"d|{doc}|{k}": 3 for doc in doctors for k in ("done|in_person", "bmin", "smin", "fb_n", "fb_sum",
                                                                   "noshow", "concl", "c24", "uw|10")}}
               for d in range(1, 31)])
    fixed_clock.set(at(30, 12))
    relogin(client, w["admin_a"], fixed_clock)
    ddb_calls.reset()
    out = ok(jpost(client, f"/clinics/{cid}/analytics?period=month&date=2026-11-01", token=w["admin_a"]["token"],
                   method="get"))
    assert len(out["doctors"]) == 20 and out["clinic"]["visits"] == 20 * 30 * 3
    assert ddb_calls.calls.count("Query") <= 3, ddb_calls.calls
    assert "Scan" not in ddb_calls.calls
    # the day item a busy doctor leaves stays far below DynamoDB's 400 KB: 20 doctors' full counters
    size = sum(len(k) + 8 for k in next(iter(astore.days(cid, "2026-11-01", "2026-11-01"))))
    assert size < 40_000


def _patients(w, drain, fixed_clock) -> dict[str, str]:
    cid, br, did = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"]
    svc = new_id()
    ids = {name: new_id() for name in ("old", "recent", "striker", "spender")}
    put_booking(cid, br, did, datetime(2026, 3, 2, 8, tzinfo=timezone.utc), "completed", patient_id=ids["old"],
                service_id=svc)
    put_booking(cid, br, did, at(20, 8), "completed", patient_id=ids["recent"], service_id=svc)
    put_booking(cid, br, did, datetime(2026, 1, 5, 8, tzinfo=timezone.utc), "completed", patient_id=ids["recent"])
    for day in (3, 4):
        put_booking(cid, br, did, at(day, 8), "no_show", patient_id=ids["striker"])
    raise_event("payment.succeeded", {"payment_id": new_id(), "clinic_id": cid, "patient_id": ids["spender"],
                                      "amount": 1234500, "currency": "RUB", "method": "cash", "cashback_spent": 0})
    drain()
    ids["service"] = svc
    return ids


def test_segments_find_lapsed_patients_strikes_and_spend_and_page_with_bound_cursors(client, w, drain, fixed_clock):
    fixed_clock.set(at(30, 12))
    ids = _patients(w, drain, fixed_clock)
    relogin(client, w["admin_a"], fixed_clock)
    base = f"/clinics/{w['a']['clinic_id']}/analytics/segments"
    t = w["admin_a"]["token"]
    lapsed = ok(jpost(client, f"{base}?kind=lapsed&days=180&service_id={ids['service']}", token=t, method="get"))
    assert [r["patient_id"] for r in lapsed["items"]] == [ids["old"]]
    assert lapsed["items"][0]["last_visit"] == "2026-03-02" and lapsed["items"][0]["days_since"] == 273
    # of any service, the recent patient's last visit is the 20th: not lapsed
    anyone = ok(jpost(client, f"{base}?kind=lapsed&days=180", token=t, method="get"))
    assert [r["patient_id"] for r in anyone["items"]] == [ids["old"]]
    strikes = ok(jpost(client, f"{base}?kind=strikes&min_strikes=2", token=t, method="get"))
    assert [(r["patient_id"], r["strikes"]) for r in strikes["items"]] == [(ids["striker"], 2)]
    spend = ok(jpost(client, f"{base}?kind=spend", token=t, method="get"))
    assert spend["items"][0]["spend"] == {"amount": 1234500, "currency": "RUB"}
    page = ok(jpost(client, f"{base}?kind=lapsed&days=1&limit=1", token=t, method="get"))
    assert page["total"] == 2 and page["next_cursor"]  # old and recent (the others never completed a visit)
    nxt = ok(jpost(client, f"{base}?kind=lapsed&days=1&limit=1&cursor={page['next_cursor']}", token=t, method="get"))
    assert nxt["items"][0]["patient_id"] != page["items"][0]["patient_id"]
    r = jpost(client, f"{base}?kind=strikes&limit=1&cursor={page['next_cursor']}", token=t, method="get")
    assert r.status_code == 400 and body(r)["errors"][0]["field"] == "cursor"
    for query, field in (("kind=everyone", "kind"), ("kind=lapsed&days=0", "days"), ("", "kind"),
                         ("kind=lapsed&service_id=x", "service_id")):
        r = jpost(client, f"{base}?{query}", token=t, method="get")
        assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == [field], query


def test_the_csv_export_opens_in_a_spreadsheet_with_russian_text(client, w, drain, fixed_clock):
    import csv
    import io

    fixed_clock.set(at(30, 12))
    ids = _patients(w, drain, fixed_clock)
    relogin(client, w["admin_a"], fixed_clock)
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/analytics/segments/export?kind=spend",
              token=w["admin_a"]["token"], method="get", headers={"Accept-Language": "ru"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    raw = r.body
    assert raw.startswith("\ufeff".encode())  # the BOM a spreadsheet needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Пациент", "Последний визит", "Дней с визита", "Визитов", "Нарушений", "Оплачено", "Валюта"]
    assert rows[1][0] == ids["spender"] and rows[1][5:] == ["12345,00", "RUB"]
    r = jpost(client, f"/clinics/{w['a']['clinic_id']}/analytics/segments/export?kind=spend",
              token=w["admin_a"]["token"], method="get", headers={"Accept-Language": "en"})
    assert r.body.decode("utf-8-sig").splitlines()[0].startswith("Patient;Last visit")


def test_a_recall_goes_through_the_notification_service_once_per_patient(client, outbox, w, drain, fixed_clock):
    from chalicelib import bootstrap
    from chalicelib.core import events

    fixed_clock.set(at(30, 12))
    cid = w["a"]["clinic_id"]
    token = log_in(client, outbox, w["patient"]["phone"])["access_token"]
    me = body(jpost(client, "/me", token=token, method="get"))
    put_booking(cid, w["a"]["branch_id"], w["doctor"]["user_id"], datetime(2026, 2, 2, 8, tzinfo=timezone.utc),
                "completed", patient_id=me["user_id"])
    drain()
    relogin(client, w["admin_a"], fixed_clock)
    url = f"/clinics/{cid}/analytics/recalls"
    r = jpost(client, url, {"patient_ids": [me["user_id"], new_id()]}, token=w["admin_a"]["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "patient_ids.1"
    r = jpost(client, url, {"patient_ids": [me["user_id"], me["user_id"]]}, token=w["admin_a"]["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "patient_ids"
    queued = ok(jpost(client, url, {"patient_ids": [me["user_id"]]}, token=w["admin_a"]["token"]), 202)
    drain()
    event = events.get_event(queued["recall_id"])
    bootstrap.analytics().send_recalls(event)  # delivered again: nothing is sent twice
    inbox = body(jpost(client, "/me/inbox", token=token, method="get"))
    recalls = [i for i in inbox["items"] if i["kind"] == "recall"]
    assert len(recalls) == 1 and recalls[0]["title"] in ("Пора на приём", "Time for a visit")
    # another clinic's administrator cannot recall this clinic's patients; a doctor cannot either
    relogin(client, w["admin_b"], fixed_clock)
    assert jpost(client, url, {"patient_ids": [me["user_id"]]}, token=w["admin_b"]["token"]).status_code == 404
    relogin(client, w["doctor"], fixed_clock)
    assert jpost(client, url, {"patient_ids": [me["user_id"]]}, token=w["doctor"]["token"]).status_code == 403
