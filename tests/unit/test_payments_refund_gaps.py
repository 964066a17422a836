"""Refunds the payments review found missing: refunds made in Stripe's dashboard, policy refunds of a booking
paid more than once, and policy refunds of money taken at the desk (owed at the reception until handed back)."""
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import pytest

from chalicelib.core.ids import new_id
from tests.conftest import body, jpost, make_staff, relogin
from tests.unit.clinic_setup import ok
from tests.unit.test_payments_refunds import paid, settle
from tests.unit.test_payments_setup import berlin, deliver, deliver_all, events_of


@pytest.fixture
def w(client, outbox, fixed_clock, fake_stripe):
    return berlin(client, outbox, fixed_clock, fake_stripe)


def pi_of(sheet):
    return sheet["client_secret"].split("_secret_")[0]


def local_post(fake, path, form):
    host, port = fake.server.server_address[:2]
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=urllib.parse.urlencode(form).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        import json

        return json.loads(resp.read())


def dashboard_refund(fake, pi_id, amount=None, status="succeeded"):
    """Someone refunds in Stripe's dashboard (the local server's dashboard route): no metadata of ours."""
    form = {"payment_intent": pi_id, "status": status}
    if amount is not None:
        form["amount"] = str(amount)
    return local_post(fake, "/_local/dashboard/refunds", form)


def staff(w):
    from chalicelib.core.web import Caller

    return Caller(user_id=w["admin"]["user_id"], role="clinic_admin", session_id="s", mfa="totp")


def patient(w):
    from chalicelib.core.web import Caller

    return Caller(user_id=w["patient"]["user_id"], role="patient", session_id="s")


def payment(pid):
    """The payment as its patient sees it (``GET /payments/{id}``, through the service: tokens age in tests
    that move the clock by days)."""
    from chalicelib import bootstrap
    from chalicelib.core.web import Caller
    from chalicelib.payments import store

    me = Caller(user_id=store.get_payment(pid)["patient_id"], role="patient", session_id="s")
    return bootstrap.payments().get(me, pid)


def desk(client, w, bid, amount, method="card_terminal"):
    return ok(jpost(client, f"/clinics/{w['clinic_id']}/payments/reception",
                    {"booking_id": bid, "method": method, "amount": {"amount": amount, "currency": "EUR"},
                     "received_by": "Мария"}, token=w["admin"]["token"]), 201)


# ------------------------------------------------------------------ refunds made in Stripe's dashboard

def test_a_dashboard_refund_is_recorded_once_shown_to_both_and_takes_back_its_cashback(
        client, w, fake_stripe, fixed_clock, drain):
    from chalicelib import bootstrap
    from chalicelib.core import clock
    from chalicelib.payments import models as m

    b, sheet = paid(client, w, fake_stripe)
    fixed_clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))  # after the visit
    relogin(client, w["doctor"], fixed_clock)
    ok(jpost(client, f"/bookings/{b['booking_id']}/complete", {}, token=w["doctor"]["token"]))
    drain()
    wallet = bootstrap.wallet()
    assert wallet.read(w["patient"]["user_id"], w["clinic_id"], clock.now())["balance"] == 360  # 10 % of 36,00

    n = len(fake_stripe.payments.events)
    re = dashboard_refund(fake_stripe, pi_of(sheet), 1200)
    assert re["metadata"] == {} and re["status"] == "succeeded"
    events = fake_stripe.payments.events[n:]
    assert sorted(e["type"] for e in events) == ["charge.refunded", "refund.updated"]
    # each delivered, then again in the other order, then "resent" from the dashboard
    answers = [deliver(client, fake_stripe, e) for e in events + events[::-1] + events]
    assert all(a.status_code == 200 for a in answers)
    assert sum(body(a) == {"handled": True} for a in answers) == 1
    drain()

    got = payment(sheet["payment_id"])
    assert got["status"] == "partially_refunded" and got["refunded"]["amount"] == 1200
    [r] = got["refunds"]
    assert r["origin"] == "provider" and r["status"] == "succeeded" and r["amount"]["amount"] == 1200
    assert len(events_of("payment.refunded")) == 1
    # what the visit earned follows what was kept: 10 % of 24,00
    assert wallet.read(w["patient"]["user_id"], w["clinic_id"], clock.now())["balance"] == 240
    history = bootstrap.payments().history(patient(w), m.HistoryQuery())["items"]
    assert [(i["kind"], i["amount"]["amount"]) for i in history if i["kind"] == "refund"] == [("refund", 1200)]
    q = m.TransactionsQuery(date_from="2026-11-24", date_to="2026-11-30", status="refund")
    listed = bootstrap.payments().transactions(staff(w), w["clinic_id"], q)["items"]
    assert [(i["refund_id"], i["origin"]) for i in listed] == [(r["refund_id"], "provider")]


def test_charge_refunded_without_its_list_a_pending_refund_and_a_stale_update(client, w, fake_stripe, drain):
    from chalicelib.payments import store

    _, sheet = paid(client, w, fake_stripe)
    fake_stripe.payments.charge_refunds_in_events = False  # as API versions since 2022-11-15 send it
    n = len(fake_stripe.payments.events)
    re = dashboard_refund(fake_stripe, pi_of(sheet), status="pending")  # the whole charge, not settled yet
    charge_refunded, pending_update = fake_stripe.payments.events[n:]
    assert "refunds" not in charge_refunded["data"]["object"]
    assert body(deliver(client, fake_stripe, charge_refunded)) == {"handled": True}  # listed through the API
    p = store.get_payment(sheet["payment_id"])
    [r] = store.get_refunds(sheet["payment_id"])
    assert p["refunded_total"] == 3600 and r["status"] == "pending" and r["provider_refund_id"] == re["id"]
    assert not events_of("payment.refunded")  # not back with the patient yet

    n = len(fake_stripe.payments.events)
    local_post(fake_stripe, f"/_local/refunds/{re['id']}/settle", {"status": "succeeded"})
    [succeeded] = fake_stripe.payments.events[n:]
    assert body(deliver(client, fake_stripe, succeeded)) == {"handled": True}
    # the pending update arrives late, and everything once more: nothing moves back, nothing counts twice
    assert body(deliver(client, fake_stripe, pending_update)) == {"handled": False}
    deliver_all(client, fake_stripe)
    [r] = store.get_refunds(sheet["payment_id"])
    assert r["status"] == "succeeded" and store.get_payment(sheet["payment_id"])["refunded_total"] == 3600
    assert len(events_of("payment.refunded")) == 1
    assert payment(sheet["payment_id"])["status"] == "refunded"


def test_a_dashboard_refund_that_fails_gives_the_amount_back(client, w, fake_stripe):
    from chalicelib.payments import store

    _, sheet = paid(client, w, fake_stripe)
    n = len(fake_stripe.payments.events)
    re = dashboard_refund(fake_stripe, pi_of(sheet), 1000, status="pending")
    local_post(fake_stripe, f"/_local/refunds/{re['id']}/settle", {"status": "failed"})
    deliver_all(client, fake_stripe, n)
    [r] = store.get_refunds(sheet["payment_id"])
    assert r["status"] == "failed" and store.get_payment(sheet["payment_id"])["refunded_total"] == 0
    assert payment(sheet["payment_id"])["status"] == "succeeded"


def test_our_refund_and_its_webhooks_count_once_beside_a_dashboard_refund(client, w, fake_stripe, drain):
    from chalicelib.payments import store

    _, sheet = paid(client, w, fake_stripe)
    url = f"/clinics/{w['clinic_id']}/payments/{sheet['payment_id']}/refunds"
    ok(jpost(client, url, {"amount": 1000, "reason": "Компенсация"}, token=w["admin"]["token"]), 202)
    settle(client, fake_stripe, drain)
    dashboard_refund(fake_stripe, pi_of(sheet), 500)
    deliver_all(client, fake_stripe)  # every event of this payment again, ours included
    deliver_all(client, fake_stripe)
    drain()
    refunds = store.get_refunds(sheet["payment_id"])
    assert sorted((r["amount"], r.get("origin", "clinic"), r["status"]) for r in refunds) == [
        (500, "provider", "succeeded"), (1000, "clinic", "succeeded")]
    charge = next(iter(fake_stripe.payments.charges.values()))
    assert store.get_payment(sheet["payment_id"])["refunded_total"] == charge["amount_refunded"] == 1500
    assert len(events_of("payment.refunded")) == 2


def test_a_dashboard_refund_takes_the_room_of_our_refund_not_yet_sent(client, w, fake_stripe, drain):
    from chalicelib.payments import store

    _, sheet = paid(client, w, fake_stripe)
    url = f"/clinics/{w['clinic_id']}/payments/{sheet['payment_id']}/refunds"
    ok(jpost(client, url, {"amount": 3000, "reason": "goodwill"}, token=w["admin"]["token"]), 202)  # reserved only
    n = len(fake_stripe.payments.events)
    dashboard_refund(fake_stripe, pi_of(sheet))  # meanwhile the whole charge is refunded in the dashboard
    deliver_all(client, fake_stripe, n)
    drain()  # our reserved refund is no longer asked for: Stripe has nothing left to give back
    deliver_all(client, fake_stripe, n)
    by_origin = {r.get("origin", "clinic"): r for r in store.get_refunds(sheet["payment_id"])}
    assert by_origin["provider"]["status"] == "succeeded" and by_origin["provider"]["amount"] == 3600
    assert by_origin["clinic"]["status"] == "failed"
    charge = next(iter(fake_stripe.payments.charges.values()))
    assert store.get_payment(sheet["payment_id"])["refunded_total"] == charge["amount_refunded"] == 3600


# ------------------------------------------------------------------ a booking paid more than once

def test_cancelling_in_time_refunds_every_payment_online_first_and_the_desk_part_is_owed(
        client, w, fake_stripe, drain):
    from chalicelib.payments import store

    b, sheet = paid(client, w, fake_stripe)  # 36,00 online prepayment
    rest = desk(client, w, b["booking_id"], 8400)  # the rest at the desk, before the visit
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    settle(client, fake_stripe, drain)
    online = payment(sheet["payment_id"])
    assert online["status"] == "refunded" and [r["status"] for r in online["refunds"]] == ["succeeded"]
    charge = next(iter(fake_stripe.payments.charges.values()))
    assert charge["amount_refunded"] == 3600
    at_desk = ok(jpost(client, f"/payments/{rest['payment_id']}", token=w["patient"]["token"], method="get"))
    assert at_desk["refunded"]["amount"] == 8400
    [owed] = at_desk["refunds"]
    assert owed["status"] == "owed_at_reception" and owed["amount"]["amount"] == 8400 and owed["origin"] == "policy"
    assert "paid_out_at" not in owed
    # the wallet took note when it became owed (what the visit would have earned on it is gone)
    from chalicelib.payments import wallet_store

    base = wallet_store.get_base(b["booking_id"])
    assert base["payments"][rest["payment_id"]] == {"paid": 8400, "refunded": 8400}
    assert {e["data"]["payment_id"] for e in events_of("payment.refunded")} == {sheet["payment_id"]}
    assert sum(int(r["amount"]) for p in (sheet, rest) for r in store.get_refunds(p["payment_id"])) == 12000


def test_a_late_cancellation_takes_the_policy_share_of_both_payments_once(client, w, fake_stripe, fixed_clock, drain):
    from chalicelib import bootstrap
    from chalicelib.booking import models as bm
    from chalicelib.payments import store

    cid = w["clinic_id"]
    pol = ok(jpost(client, f"/clinics/{cid}", token=w["admin"]["token"], method="get"))["policies"]
    ok(jpost(client, f"/clinics/{cid}/policies", {**{k: v for k, v in pol.items() if v is not None},
                                                  "late_cancel_refund_percent": 50},
             token=w["admin"]["token"], method="put"))
    b, sheet = paid(client, w, fake_stripe)
    rest = desk(client, w, b["booking_id"], 8400, method="cash")
    fixed_clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc))  # an hour before the visit
    bootstrap.booking().cancel(patient(w), b["booking_id"], bm.CancelIn())
    settle(client, fake_stripe, drain)
    # half of 120,00 goes back: all 36,00 online first, then 24,00 owed at the desk
    assert store.get_payment(sheet["payment_id"])["refunded_total"] == 3600
    [owed] = store.get_refunds(rest["payment_id"])
    assert owed["amount"] == 2400 and owed["status"] == "owed_at_reception"
    [cancelled] = events_of("booking.cancelled")
    bootstrap.payments().refund_by_policy(cancelled)  # the outbox delivers it again: nothing more goes back
    assert store.get_payment(rest["payment_id"])["refunded_total"] == 2400
    assert len(store.get_refunds(sheet["payment_id"])) == 1 and len(store.get_refunds(rest["payment_id"])) == 1


@pytest.mark.parametrize("percent, already, want", [
    (100, (0, 0), [3600, 8400]),
    (50, (0, 0), [3600, 2400]),
    (50, (1000, 0), [2600, 2400]),     # staff gave 10,00 back earlier: the policy's share is of the whole
    (50, (3600, 2400), []),            # given already: a second run takes nothing
    (10, (0, 0), [1200]),
    (0, (0, 0), []),
])
def test_the_policy_plan_never_takes_more_than_a_payment_has_left(percent, already, want):
    from chalicelib.payments.service import policy_plan

    bid = new_id()
    desk_p = {"payment_id": f"{bid}-1", "amount": 8400, "refunded_total": already[1], "currency": "EUR",
              "provider": "desk"}
    online = {"payment_id": f"{bid}-2", "amount": 3600, "refunded_total": already[0], "currency": "EUR",
              "provider": "stripe"}
    plan = policy_plan([desk_p, online], percent)
    assert [a for _, a in plan] == want
    assert all(a <= int(p["amount"]) - int(p["refunded_total"]) for p, a in plan)
    if plan:
        assert plan[0][0] is online  # online before the desk even though it was made later


# ------------------------------------------------------------------ staff hand back what is owed at the desk

def test_staff_pay_out_an_owed_refund_once_and_the_day_shows_it(client, w, fake_stripe, drain, outbox, fixed_clock):
    from chalicelib.payments import store

    b, sheet = paid(client, w, fake_stripe)
    rest = desk(client, w, b["booking_id"], 8400)
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    settle(client, fake_stripe, drain)
    [owed] = store.get_refunds(rest["payment_id"])
    [online] = store.get_refunds(sheet["payment_id"])
    cid, tok = w["clinic_id"], w["admin"]["token"]
    day = "2026-11-24"
    [row] = ok(jpost(client, f"/clinics/{cid}/payments/daily?date_from={day}&date_to={day}", token=tok,
                     method="get"))["items"]
    assert row["refunded"]["amount"] == 3600 and row["owed_at_reception"]["amount"] == 8400
    listed = ok(jpost(client, f"/clinics/{cid}/payments?date_from={day}&date_to={day}&status=refund_owed",
                      token=tok, method="get"))["items"]
    assert [i["refund_id"] for i in listed] == [owed["refund_id"]]

    url = f"/clinics/{cid}/payments/{rest['payment_id']}/refunds/{owed['refund_id']}/payout"
    other_admin = make_staff(client, outbox, fixed_clock, "+79120000011", "clinic_admin")
    assert jpost(client, url, {}, token=other_admin["token"]).status_code == 404
    assert jpost(client, url, {}, token=w["patient"]["token"]).status_code == 403
    r = jpost(client, url, {"paid_out_by": "Мария", "amount": 1}, token=tok)
    assert r.status_code in (400, 422) and body(r)["errors"][0]["field"] == "amount"
    bogus = f"/clinics/{cid}/payments/{rest['payment_id']}/refunds/{new_id()}/payout"
    assert jpost(client, bogus, {}, token=tok).status_code == 404
    stripe_one = f"/clinics/{cid}/payments/{sheet['payment_id']}/refunds/{online['refund_id']}/payout"
    r = jpost(client, stripe_one, {}, token=tok)
    assert r.status_code == 409 and body(r)["code"] == "refund_not_owed"

    done = ok(jpost(client, url, {"paid_out_by": "Мария"}, token=tok))
    assert done["status"] == "succeeded" and done["paid_out_by"] == {"user_id": w["admin"]["user_id"], "name": "Мария"}
    fixed_clock.advance(minutes=5)
    again = ok(jpost(client, url, {"paid_out_by": "Ольга"}, token=tok))
    assert again["paid_out_at"] == done["paid_out_at"] and again["paid_out_by"]["name"] == "Мария"
    drain()
    seen = ok(jpost(client, f"/payments/{rest['payment_id']}", token=w["patient"]["token"], method="get"))
    assert seen["refunds"][0]["status"] == "succeeded" and seen["refunds"][0]["paid_out_at"] == done["paid_out_at"]
    assert len([e for e in events_of("payment.refunded") if e["data"]["payment_id"] == rest["payment_id"]]) == 1
    [row] = ok(jpost(client, f"/clinics/{cid}/payments/daily?date_from={day}&date_to={day}", token=tok,
                     method="get"))["items"]
    assert row["refunded"]["amount"] == 12000 and row["owed_at_reception"]["amount"] == 0


def test_a_clinic_with_pages_of_transactions_finds_its_owed_refund(client, w, fake_stripe, drain):
    """More than two pages of the day's transactions: paging sees each once; the owed filter finds the one."""
    from chalicelib.core import db
    from chalicelib.payments import store

    tx_items = []
    for i in range(160):  # the day's earlier desk payments (written as the service writes them)
        bid = new_id()
        at = f"2026-11-24T05:{i // 60:02d}:{i % 60:02d}Z"
        p = {"payment_id": f"{bid}-1", "booking_id": bid, "patient_id": new_id(), "clinic_id": w["clinic_id"],
             "doctor_id": w["doctor"]["user_id"], "service_name": {"en": "Consultation", "ru": "Консультация"},
             "time_zone": "Europe/Berlin", "method": "cash", "status": "succeeded", "amount": 1000 + i,
             "currency": "EUR", "cashback_spent": 0, "refunded_total": 0, "provider": "desk", "created_at": at,
             "paid_at": at, "local_day": "2026-11-24", "version": 1}
        tx_items.append(store.payment_item({**p, **store.index_keys(p, at)}))
    for at in range(0, len(tx_items), 80):
        tx = db.Tx()
        for item in tx_items[at:at + 80]:
            tx.put_new("seed", item)
        tx.commit()
    b, sheet = paid(client, w, fake_stripe)
    rest = desk(client, w, b["booking_id"], 8400)
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    settle(client, fake_stripe, drain)
    [owed] = store.get_refunds(rest["payment_id"])

    def pages(query):
        seen, cursor, n = [], None, 0
        while True:
            url = f"/clinics/{w['clinic_id']}/payments?date_from=2026-11-24&date_to=2026-11-24&limit=50{query}"
            page = ok(jpost(client, url + (f"&cursor={cursor}" if cursor else ""), token=w["admin"]["token"],
                            method="get"))
            seen += page["items"]
            n += 1
            cursor = page["next_cursor"]
            if not cursor:
                return seen, n

    everything, n = pages("")
    ids = [i.get("refund_id") or i["payment_id"] for i in everything]
    assert n >= 4 and len(ids) == len(set(ids)) == 160 + 4  # 2 payments, 2 refunds of the cancelled visit
    owed_only, _ = pages("&status=refund_owed")
    assert [i["refund_id"] for i in owed_only] == [owed["refund_id"]]


def test_a_dashboard_refunds_webhook_costs_one_read_and_one_transaction(client, w, fake_stripe, ddb_calls):
    _, sheet = paid(client, w, fake_stripe)
    n = len(fake_stripe.payments.events)
    dashboard_refund(fake_stripe, pi_of(sheet), 700)
    [update] = [e for e in fake_stripe.payments.events[n:] if e["type"] == "refund.updated"]
    ddb_calls.reset()
    assert body(deliver(client, fake_stripe, update)) == {"handled": True}  # its payment found through Stripe
    assert sorted(ddb_calls.calls) == ["Query", "TransactWriteItems"]
    ddb_calls.reset()
    assert body(deliver(client, fake_stripe, update)) == {"handled": False}
    assert ddb_calls.calls == ["Query"]


def test_the_patient_is_told_a_refund_waits_at_the_reception_and_when_it_was_handed_back(
        client, w, fake_stripe, drain):
    """A cancelled visit paid partly online and partly at the desk: the online part is 'refunded, your bank
    credits it'; the desk part is 'waiting for you at the reception', then 'handed back', each once and never
    as a bank refund."""
    from chalicelib.notify import store as notify_store
    from chalicelib.payments import store

    b, sheet = paid(client, w, fake_stripe)
    rest = desk(client, w, b["booking_id"], 8400)
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    settle(client, fake_stripe, drain)
    drain()

    def told():
        items, _ = notify_store.inbox_page(w["patient"]["user_id"], 100, None)
        return [(m["kind"], m["text"]) for m in items if m["kind"].startswith("refund")]

    kinds = sorted(k for k, _ in told())
    assert kinds == ["refund_made", "refund_owed"], told()
    owed_text = next(t for k, t in told() if k == "refund_owed")
    assert "84" in owed_text and ("reception" in owed_text or "регистратур" in owed_text), owed_text
    [owed] = store.get_refunds(rest["payment_id"])
    url = f"/clinics/{w['clinic_id']}/payments/{rest['payment_id']}/refunds/{owed['refund_id']}/payout"
    ok(jpost(client, url, {"paid_out_by": "Мария"}, token=w["admin"]["token"]))
    ok(jpost(client, url, {"paid_out_by": "Мария"}, token=w["admin"]["token"]))  # asked twice: told once
    drain()
    drain()
    kinds = sorted(k for k, _ in told())
    assert kinds == ["refund_at_reception", "refund_made", "refund_owed"], told()
    handed = next(t for k, t in told() if k == "refund_at_reception")
    assert "84" in handed and "bank" not in handed.lower() and "банк" not in handed.lower(), handed
