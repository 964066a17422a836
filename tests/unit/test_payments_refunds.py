"""Refunds by policy, by staff, and for money that came after the visit's time was gone."""
import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.test_payments_setup import ask_payment, berlin, booking_status, deliver_all, events_of, hold


@pytest.fixture
def w(client, outbox, fixed_clock, fake_stripe):
    return berlin(client, outbox, fixed_clock, fake_stripe)


def paid(client, w, fake, patient=None, start=None):
    patient = patient or w["patient"]
    b = hold(client, w, patient, start)
    sheet = ok(ask_payment(client, patient, b["booking_id"]), 201)
    n = len(fake.payments.events)
    fake.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    deliver_all(client, fake, n)
    assert booking_status(b["booking_id"]) == "confirmed"
    return b, sheet


def settle(client, fake, drain):
    """The outbox asks Stripe; Stripe's events come back."""
    n = len(fake.payments.events)
    drain()
    deliver_all(client, fake, n)
    drain()


def test_a_payment_after_the_hold_lapsed_is_refunded_in_full_and_the_patient_told(
        client, w, fake_stripe, fixed_clock, drain, outbox):
    from chalicelib import bootstrap

    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    fixed_clock.advance(minutes=31)
    assert bootstrap.booking().expire_due_holds() == 1
    pi_id = sheet["client_secret"].split("_secret_")[0]
    # the card went through at Stripe just before our cancel arrived
    fake_stripe.payments.confirm(pi_id)
    deliver_all(client, fake_stripe)
    settle(client, fake_stripe, drain)
    assert booking_status(b["booking_id"]) == "expired"
    charge = fake_stripe.payments.charges[fake_stripe.payments.intents[pi_id]["latest_charge"]]
    assert charge["amount_refunded"] == 3600 and charge["refunds"]["data"][0]["reverse_transfer"] is True
    assert charge["refunds"]["data"][0]["refund_application_fee"] is True
    [refunded] = events_of("payment.refunded")
    assert refunded["data"]["amount"] == 3600 and refunded["data"]["refunded_total"] == 3600
    assert refunded["data"]["reason"] == "no_visit"
    assert any("refunded it in full" in t for t in outbox.to(w["patient"]["phone"]))


def test_a_lapsing_hold_cancels_its_intent(client, w, fake_stripe, fixed_clock, drain):
    from chalicelib import bootstrap

    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    fixed_clock.advance(minutes=31)
    assert bootstrap.booking().expire_due_holds() == 1
    drain()
    pi = fake_stripe.payments.intents[sheet["client_secret"].split("_secret_")[0]]
    assert pi["status"] == "canceled"
    from chalicelib.payments import store

    assert store.get_payment(sheet["payment_id"])["status"] == "cancelled"


def test_a_changed_amount_cancels_the_old_intent(client, w, fake_stripe):
    from chalicelib.booking import store
    from chalicelib.core import db

    b = hold(client, w)
    first = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    item = store.get_booking(b["booking_id"])  # the clinic's rule changed the prepayment (a new service price)
    db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(store.booking_pk(b["booking_id"]), "BOOKING"),
                         UpdateExpression="SET prepayment = :p",
                         ExpressionAttributeValues=db.values(p={**item["prepayment"], "amount": 4000}))
    second = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    assert second["payment_id"] != first["payment_id"] and second["amount"]["amount"] == 4000
    old = fake_stripe.payments.intents[first["client_secret"].split("_secret_")[0]]
    assert old["status"] == "canceled"
    got = ok(jpost(client, f"/payments/{first['payment_id']}", token=w["patient"]["token"], method="get"))
    assert got["status"] == "cancelled"


def test_cancelling_in_the_free_window_refunds_in_full(client, w, fake_stripe, drain):
    b, sheet = paid(client, w, fake_stripe)
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    settle(client, fake_stripe, drain)
    got = ok(jpost(client, f"/payments/{sheet['payment_id']}", token=w["patient"]["token"], method="get"))
    assert got["status"] == "refunded" and got["refunded"]["amount"] == 3600
    assert [r["status"] for r in got["refunds"]] == ["succeeded"]


def test_a_late_cancellation_refunds_what_the_policy_says(client, w, fake_stripe, fixed_clock, drain):
    cid = w["clinic_id"]
    pol = ok(jpost(client, f"/clinics/{cid}", token=w["admin"]["token"], method="get"))["policies"]
    ok(jpost(client, f"/clinics/{cid}/policies", {**{k: v for k, v in pol.items() if v is not None},
                                                  "late_cancel_refund_percent": 50},
             token=w["admin"]["token"], method="put"))
    b, sheet = paid(client, w, fake_stripe)
    from datetime import datetime, timezone

    from chalicelib import bootstrap
    from chalicelib.booking import models as bm
    from chalicelib.core.web import Caller
    from chalicelib.payments import store

    fixed_clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc))  # an hour before the visit
    me = Caller(user_id=w["patient"]["user_id"], role="patient", session_id="s")
    assert bootstrap.booking().cancel(me, b["booking_id"], bm.CancelIn())["status"] == "cancelled_by_patient"
    settle(client, fake_stripe, drain)
    p = store.get_payment(sheet["payment_id"])
    assert p["refunded_total"] == 1800 and bootstrap.payments().status_of(p) == "partially_refunded"


def test_staff_refund_part_with_a_reason_never_more_than_paid(client, w, fake_stripe, fixed_clock, drain):
    b, sheet = paid(client, w, fake_stripe)
    cid, pid = w["clinic_id"], sheet["payment_id"]
    url = f"/clinics/{cid}/payments/{pid}/refunds"
    r = jpost(client, url, {"amount": 1000, "reason": "Скидка за ожидание"}, token=w["admin"]["token"],
              headers={"Idempotency-Key": "refund-key-0001"})
    assert r.status_code == 202, r.body
    again = jpost(client, url, {"amount": 1000, "reason": "Скидка за ожидание"}, token=w["admin"]["token"],
                  headers={"Idempotency-Key": "refund-key-0001"})
    assert again.status_code == 200 and body(again)["refund_id"] == body(r)["refund_id"]
    too_much = jpost(client, url, {"amount": 2601, "reason": "too much"}, token=w["admin"]["token"])
    assert too_much.status_code == 422 and body(too_much)["errors"][0]["field"] == "amount"
    settle(client, fake_stripe, drain)
    got = ok(jpost(client, f"/payments/{pid}", token=w["admin"]["token"], method="get"))
    assert got["refunded"]["amount"] == 1000 and got["refunds"][0]["status"] == "succeeded"
    assert got["refunds"][0]["reason"] == "Скидка за ожидание"
