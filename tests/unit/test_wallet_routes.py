"""What patients and clinics see of the wallet over HTTP: my wallets, one wallet with its entries (paged,
never truncated) and what expires when, the clinic's liability; nobody sees another's; bad input is a 4xx
naming the field. And the seam payments codes to: stale reads, more than the balance, the clinic's share."""
from __future__ import annotations

import pytest

from chalicelib import bootstrap
from chalicelib.core import clock, db
from chalicelib.core.errors import AppError
from chalicelib.core.ids import new_id
from tests.conftest import body, jpost, sign_up
from tests.unit import wallet_world as ww
from tests.unit.clinic_setup import ok, world


@pytest.fixture
def w(client, outbox, fixed_clock, drain):
    w = world(client, outbox, fixed_clock)
    w["patient"]["user_id"] = ok(jpost(client, "/me", token=w["patient"]["token"], method="get"))["user_id"]
    t2 = sign_up(client, outbox, "+79110000006")
    w["other"] = {"token": t2["access_token"],
                  "user_id": ok(jpost(client, "/me", token=t2["access_token"], method="get"))["user_id"]}
    pid, cid = w["patient"]["user_id"], w["a"]["clinic_id"]
    bid = new_id()
    ww.paid(new_id(), bid, pid, cid, 650_000)
    ww.completed(bid, pid, cid)
    drain()
    return w


def get(client, path, token):
    return jpost(client, path, token=token, method="get")


def test_the_patient_sees_balance_entries_and_what_expires_when(client, w, drain, fixed_clock):
    pid, cid = w["patient"]["user_id"], w["a"]["clinic_id"]
    for _ in range(119):  # 1 earn + 119 spends: more than two pages of entries
        ww.spend(pid, cid, 100, clock.now())
    drain()
    mine = ok(get(client, "/me/wallets", w["patient"]["token"]))
    assert [x["clinic_id"] for x in mine["items"]] == [cid]
    assert mine["items"][0]["balance"] == {"amount": 65_000 - 11_900, "currency": "RUB"}
    until = mine["items"][0]["next_expiry"]["valid_until"]
    assert until.startswith("2027-11-24T")  # a year after the visit was completed
    seen, cursor, pages = [], None, 0
    while True:
        page = ok(get(client, f"/me/wallets/{cid}?limit=50" + (f"&cursor={cursor}" if cursor else ""),
                      w["patient"]["token"]))
        pages += 1
        seen += page["entries"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == 120 and len({e["entry_id"] for e in seen}) == 120
    assert seen[-1]["kind"] == "earn" and seen[-1]["amount"] == {"amount": 65_000, "currency": "RUB"}
    assert seen[0]["balance_after"]["amount"] == 53_100 and seen[0]["kind"] == "spend"
    assert sum(e["amount"]["amount"] for e in seen) == page["balance"]["amount"] == 53_100
    assert page["expiring"] == [{"amount": {"amount": 53_100, "currency": "RUB"},
                                 "valid_until": until}]


def test_nobody_sees_another_patients_wallet_or_another_clinics_liability(client, w, drain, fixed_clock):
    cid, other_cid = w["a"]["clinic_id"], w["b"]["clinic_id"]
    assert ok(get(client, "/me/wallets", w["other"]["token"]))["items"] == []
    r = get(client, f"/me/wallets/{cid}", w["other"]["token"])
    assert r.status_code == 404 and body(r)["code"] == "not_found"
    assert get(client, f"/me/wallets/{other_cid}", w["patient"]["token"]).status_code == 404
    period = "date_from=2026-11-01&date_to=2026-11-30"
    report = ok(get(client, f"/clinics/{cid}/cashback?{period}", w["admin_a"]["token"]))
    assert report["outstanding"] == {"amount": 65_000, "currency": "RUB"}
    assert report["period"]["earned"]["amount"] == 65_000 and report["period"]["time_zone"] == "Europe/Kaliningrad"
    for who, status in (("admin_b", 404), ("doctor", 403), ("patient", 403)):
        r = get(client, f"/clinics/{cid}/cashback?{period}", w[who]["token"])
        assert r.status_code == status, (who, r.body)
    # clinic B's administrator reads B's (nothing), never A's
    report_b = ok(get(client, f"/clinics/{other_cid}/cashback?{period}", w["admin_b"]["token"]))
    assert report_b["outstanding"]["amount"] == 0
    assert get(client, f"/clinics/{cid}/cashback?{period}", w["platform"]["token"]).status_code == 200
    assert get(client, "/me/wallets", None).status_code == 401


def test_a_period_counts_local_days_of_the_clinics_zone(client, w, drain, fixed_clock):
    cid = w["a"]["clinic_id"]
    # earned at 2026-11-24T06:00Z: 08:00 in Kaliningrad (UTC+2) on the 24th; in Asia/Sakhalin (UTC+11) it is 17:00
    on_the_day = ok(get(client, f"/clinics/{cid}/cashback?date_from=2026-11-24&date_to=2026-11-24",
                        w["admin_a"]["token"]))["period"]["earned"]["amount"]
    day_before = ok(get(client, f"/clinics/{cid}/cashback?date_from=2026-11-23&date_to=2026-11-23"
                                "&time_zone=Asia/Sakhalin", w["admin_a"]["token"]))["period"]["earned"]["amount"]
    assert (on_the_day, day_before) == (65_000, 0)


@pytest.mark.parametrize("query, field", [
    ("date_from=2026-13-01&date_to=2026-11-30", "date_from"),
    ("date_from=2026-11-01", "date_to"),
    ("date_from=2026-11-30&date_to=2026-11-01", "date_to"),
    ("date_from=2025-11-01&date_to=2026-11-30", "date_to"),
    ("date_from=2026-11-01&date_to=2026-11-30&time_zone=Mars/Olympus", "time_zone"),
    ("date_from=2026-11-01&date_to=2026-11-30&doctor=1", "doctor"),
])
def test_bad_report_queries_name_the_field(client, w, query, field):
    r = get(client, f"/clinics/{w['a']['clinic_id']}/cashback?{query}", w["admin_a"]["token"])
    assert r.status_code == 422, r.body
    assert field in [e["field"] for e in body(r)["errors"]], r.body


@pytest.mark.parametrize("query, field, status", [
    ("limit=0", "limit", 422), ("limit=101", "limit", 422), ("limit=1.5", "limit", 422),
    ("limit=ten", "limit", 422), ("cursor=bm90LWEtY3Vyc29y", "cursor", 400), ("sort=asc", "sort", 422),
])
def test_bad_wallet_queries_name_the_field(client, w, query, field, status):
    for path in ("/me/wallets", f"/me/wallets/{w['a']['clinic_id']}"):
        r = get(client, f"{path}?{query}", w["patient"]["token"])
        assert r.status_code == status and field in [e["field"] for e in body(r)["errors"]], (path, r.body)
    assert get(client, "/me/wallets/not-a-clinic", w["patient"]["token"]).status_code == 404


def test_a_cursor_of_one_wallet_is_refused_on_another_list(client, w, drain):
    pid, cid = w["patient"]["user_id"], w["a"]["clinic_id"]
    for _ in range(3):
        ww.spend(pid, cid, 100, clock.now())
    cursor = ok(get(client, f"/me/wallets/{cid}?limit=1", w["patient"]["token"]))["next_cursor"]
    r = get(client, f"/me/wallets?cursor={cursor}", w["patient"]["token"])
    assert r.status_code == 400 and body(r)["code"] == "invalid_cursor"


def test_the_seam_payments_codes_to(backend_env, fixed_clock, drain):
    cid, pid, bid = ww.clinic(cashback_max_spend_percent=30), new_id(), new_id()
    ww.paid(new_id(), bid, pid, cid, 100_000)
    ww.completed(bid, pid, cid)
    drain()
    wallet = bootstrap.wallet()
    now = clock.now()
    seen = wallet.read(pid, cid, now)
    assert (seen["balance"], seen["currency"], seen["version"]) == (10_000, "RUB", 1)
    assert wallet.max_spend(20_000, {"cashback_max_spend_percent": 30}) == 6_000
    assert wallet.max_spend(999, None) == 499  # the default share, 50 %, rounded down
    with pytest.raises(AppError) as e:
        wallet.spend_ops(pid, cid, 10_001, new_id(), now, seen["version"])
    assert e.value.status == 422 and e.value.errors[0].field == "cashback_spend"
    for bad in (1.5, "100", -1, True):
        with pytest.raises(AppError) as e:
            wallet.spend_ops(pid, cid, bad, new_id(), now, seen["version"])
        assert e.value.status == 422 and e.value.errors[0].field == "cashback_spend"
    assert wallet.spend_ops(pid, cid, 0, new_id(), now, seen["version"]) == []
    first = wallet.spend_ops(pid, cid, 4_000, new_id(), now, seen["version"])
    second = wallet.spend_ops(pid, cid, 4_000, new_id(), now, seen["version"])  # both built from the same read
    db.Tx().extend(first).commit()
    with pytest.raises(db.TxCancelled) as cancelled:
        db.Tx().extend(second).commit()
    assert cancelled.value.condition_failed("wallet:")  # payments answers 409 cashback_changed
    bootstrap.reset()  # another process (a cold container) with a stale version: caught before sending
    with pytest.raises(AppError) as e:
        bootstrap.wallet().spend_ops(pid, cid, 1_000, new_id(), now, seen["version"])
    assert e.value.status == 409 and e.value.code == "cashback_changed"
    wallet = bootstrap.wallet()
    assert wallet.read(pid, cid, now)["balance"] == 6_000
    fresh = wallet.read(new_id(), cid, now)
    assert (fresh["balance"], fresh["version"]) == (0, 0)
    with pytest.raises(AppError) as e:
        wallet.spend_ops(new_id(), cid, 1, new_id(), now, 0)
    assert e.value.status == 422 and e.value.errors[0].field == "cashback_spend"


def test_a_visit_the_doctor_completes_earns_at_the_clinics_rate(client, outbox, fixed_clock, w, drain):
    """The real booking flow: booked, paid (payments' event), completed by the doctor (booking's own event)."""
    from datetime import datetime, timezone

    from tests.conftest import relogin
    from tests.unit.booking_setup import book, slots

    cid = w["a"]["clinic_id"]
    relogin(client, w["admin_a"], fixed_clock)
    ok(jpost(client, f"/clinics/{cid}/policies", {"cashback_percent": 7, "cashback_expiry_days": 90},
             token=w["admin_a"]["token"], method="put"))
    for bad, field in (({"cashback_expiry_days": 0}, "cashback_expiry_days"),
                       ({"cashback_max_spend_percent": 101}, "cashback_max_spend_percent"),
                       ({"cashback_max_spend_percent": 12.5}, "cashback_max_spend_percent")):
        r = jpost(client, f"/clinics/{cid}/policies", bad, token=w["admin_a"]["token"], method="put")
        assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == [field], r.body
    b = ok(book(client, w, w["patient"]["token"], slots(client, w)[0]["start"]), 201)
    pid = w["patient"]["user_id"]
    ww.paid(new_id(), b["booking_id"], pid, cid, 200_000)
    drain()
    before = bootstrap.wallet().read(pid, cid, clock.now())["balance"]
    fixed_clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))
    relogin(client, w["doctor"], fixed_clock)
    ok(jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["doctor"]["token"]))
    drain()
    seen = bootstrap.wallet().read(pid, cid, clock.now())
    assert seen["balance"] == before + 14_000  # 7 % of 2,000.00
    # 90 days after the visit was completed: it now expires first, before the older 365-day lot
    assert [lot["valid_until"] for lot in seen["lots"]][0].startswith("2027-02-28T12:0")
