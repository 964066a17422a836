"""Prepayment in the app, end to end through the real Stripe SDK and the local Stripe server."""
import pytest

from tests.conftest import body, jpost
from tests.unit.clinic_setup import ok
from tests.unit.test_payments_setup import ask_payment, berlin, booking_status, deliver, deliver_all, events_of, hold


@pytest.fixture
def w(client, outbox, fixed_clock, fake_stripe):
    return berlin(client, outbox, fixed_clock, fake_stripe)


def test_patient_pays_a_held_booking_and_it_is_confirmed(client, w, fake_stripe, drain):
    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    assert sheet["amount"] == {"amount": 3600, "currency": "EUR"}
    assert sheet["client_secret"].startswith("pi_") and sheet["customer"].startswith("cus_")
    assert sheet["ephemeral_key"].startswith("ek_") and sheet["publishable_key"].startswith("pk_")
    pi = fake_stripe.payments.intents[sheet["client_secret"].split("_secret_")[0]]
    # a destination charge to the clinic's connected account, with the platform's 5 % fee, in its currency
    assert pi["transfer_data"] == {"destination": w["account_id"]} and pi["application_fee_amount"] == 180
    assert pi["currency"] == "eur" and pi["metadata"]["booking_id"] == b["booking_id"]
    fake_stripe.payments.confirm(pi["id"])
    assert all(r.status_code == 200 for r in deliver_all(client, fake_stripe))
    assert booking_status(b["booking_id"]) == "confirmed"
    got = ok(jpost(client, f"/payments/{sheet['payment_id']}", token=w["patient"]["token"], method="get"))
    assert got["status"] == "succeeded" and got["method"] == "online"
    [succeeded] = events_of("payment.succeeded")
    assert succeeded["data"] == {"payment_id": sheet["payment_id"], "booking_id": b["booking_id"],
                                 "patient_id": w["patient"]["user_id"], "clinic_id": w["clinic_id"],
                                 "doctor_id": w["doctor"]["user_id"], "amount": 3600, "currency": "EUR",
                                 "method": "online", "cashback_spent": 0}
    hist = ok(jpost(client, "/me/payments", token=w["patient"]["token"], method="get"))
    assert [i["payment_id"] for i in hist["items"]] == [sheet["payment_id"]]


def test_asking_twice_gives_the_same_intent(client, w, fake_stripe):
    b = hold(client, w)
    first = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    again = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    assert again["payment_id"] == first["payment_id"] and again["client_secret"] == first["client_secret"]
    assert len(fake_stripe.payments.intents) == 1


def test_a_failed_card_leaves_the_hold_and_tells_the_patient(client, w, fake_stripe, drain, outbox):
    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    pi_id = sheet["client_secret"].split("_secret_")[0]
    fake_stripe.payments.confirm(pi_id, "pm_card_chargeDeclined")
    deliver_all(client, fake_stripe)
    assert booking_status(b["booking_id"]) == "held"
    drain()
    assert any("did not go through" in t for t in outbox.to(w["patient"]["phone"]))
    # the patient tries another card on the same intent: confirmed
    n = len(fake_stripe.payments.events)
    fake_stripe.payments.confirm(pi_id)
    deliver_all(client, fake_stripe, n)
    assert booking_status(b["booking_id"]) == "confirmed"


def test_a_bad_signature_changes_nothing(client, w, fake_stripe):
    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    fake_stripe.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    event = [e for e in fake_stripe.payments.events if e["type"] == "payment_intent.succeeded"][0]
    payload, sig = fake_stripe.signed(event)
    r = client.http.post("/webhooks/stripe", body=payload.replace(b"3600", b"3601"),
                         headers={"Stripe-Signature": sig, "Content-Type": "application/json"})
    assert r.status_code == 400 and body(r)["code"] == "invalid_signature"
    assert booking_status(b["booking_id"]) == "held"
    assert deliver(client, fake_stripe, event).status_code == 200
    assert booking_status(b["booking_id"]) == "confirmed"


def test_a_webhook_event_costs_one_transaction_and_two_reads(client, w, fake_stripe, ddb_calls):
    b = hold(client, w)
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    fake_stripe.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    event = [e for e in fake_stripe.payments.events if e["type"] == "payment_intent.succeeded"][0]
    ddb_calls.reset()
    assert deliver(client, fake_stripe, event).status_code == 200
    assert sorted(ddb_calls.calls) == ["GetItem", "GetItem", "TransactWriteItems"]
    ddb_calls.reset()
    assert body(deliver(client, fake_stripe, event)) == {"handled": False}  # again: nothing written
    assert ddb_calls.calls == ["GetItem"]


@pytest.mark.parametrize("fault", ["server_error", "hang"])
def test_stripe_failing_is_a_503_with_retry_after_and_a_retry_gets_the_same_intent(
        client, w, fake_stripe, monkeypatch, fault):
    from chalicelib import bootstrap
    from chalicelib.payments import store

    monkeypatch.setattr(bootstrap.settings(), "stripe_timeout_s", 0.5)
    bootstrap.stripe()._client = None  # made again with the short timeout
    b = hold(client, w)
    # every call the request makes fails in turn: the customer, the intent, the ephemeral key
    for path in ("/v1/customers", "/v1/payment_intents", "/v1/ephemeral_keys"):
        fake_stripe.fail_next(path, fault, times=3, hang_s=1.0)  # the SDK retries twice: all three fail
        r = ask_payment(client, w["patient"], b["booking_id"])
        assert r.status_code == 503 and body(r)["code"] == "payment_provider_unavailable", r.body
        assert {k.lower(): v for k, v in r.headers.items()}["retry-after"] == "30"
        if path != "/v1/ephemeral_keys":
            assert db_payref(b["booking_id"]) is None  # nothing half-written
    sheet = ok(ask_payment(client, w["patient"], b["booking_id"]), 201)
    assert len(fake_stripe.payments.intents) == 1  # the retries found the intent the failed request made
    assert store.get_payment(sheet["payment_id"])["status"] == "pending"
    assert len(fake_stripe.payments.customers) == 1


def db_payref(bid):
    from chalicelib.core import db
    from chalicelib.payments import store

    return db.get(*store.payref_key(bid))
