"""Staff at the desk: a payment taken in cash or by card terminal, a payment link by SMS, the clinic's
transactions with filters, daily totals and the CSV export; and what another clinic may not see."""
import csv
import io

import pytest

from tests.conftest import body, jpost, make_staff
from tests.unit.clinic_setup import ok
from tests.unit.test_payments_setup import ask_payment, berlin, booking_status, deliver_all, hold


@pytest.fixture
def w(client, outbox, fixed_clock, fake_stripe):
    return berlin(client, outbox, fixed_clock, fake_stripe)


def reception(client, w, bid, amount=3600, method="cash", currency="EUR", token=None):
    return jpost(client, f"/clinics/{w['clinic_id']}/payments/reception",
                 {"booking_id": bid, "method": method, "amount": {"amount": amount, "currency": currency},
                  "received_by": "Мария, регистратура"}, token=token or w["admin"]["token"])


def test_a_desk_payment_confirms_the_held_booking(client, w):
    b = hold(client, w)
    p = ok(reception(client, w, b["booking_id"], method="card_terminal"), 201)
    assert p["status"] == "succeeded" and p["method"] == "card_terminal"
    assert p["received_by"] == {"user_id": w["admin"]["user_id"], "name": "Мария, регистратура"}
    assert booking_status(b["booking_id"]) == "confirmed"
    # a patient who then asks to pay online is told it is paid
    r = ask_payment(client, w["patient"], b["booking_id"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


def test_a_payment_link_by_sms_names_the_clinic_and_the_amount_only(client, w, fake_stripe, drain, outbox):
    b = hold(client, w)
    link = ok(jpost(client, f"/clinics/{w['clinic_id']}/payments/links", {"booking_id": b["booking_id"]},
                    token=w["admin"]["token"]), 201)
    assert link["amount"] == {"amount": 3600, "currency": "EUR"} and "/checkout/pay/cs_test_" in link["url"]
    drain()
    [sms] = [t for t in outbox.to(w["patient"]["phone"]) if "checkout" in t]
    assert "Praxis Mitte" in sms and "36,00 EUR" in sms and link["url"] in sms
    assert "Cardiology" not in sms and "Кардиолог" not in sms
    session = fake_stripe.payments.sessions[link["url"].rsplit("/", 1)[1]]
    fake_stripe.payments.pay_session(session["id"])
    deliver_all(client, fake_stripe)  # payment_intent.succeeded and checkout.session.completed: one confirmation
    assert booking_status(b["booking_id"]) == "confirmed"
    got = ok(jpost(client, f"/payments/{link['payment_id']}", token=w["admin"]["token"], method="get"))
    assert got["method"] == "link" and got["status"] == "succeeded"


def test_transactions_filters_totals_and_csv(client, w, fake_stripe, drain):
    starts = __import__("tests.unit.test_payments_setup", fromlist=["free_starts"]).free_starts(client, w)
    cash = hold(client, w, start=starts[0])
    ok(reception(client, w, cash["booking_id"]), 201)
    online = hold(client, w, start=starts[1])
    sheet = ok(ask_payment(client, w["patient"], online["booking_id"]), 201)
    fake_stripe.payments.confirm(sheet["client_secret"].split("_secret_")[0])
    deliver_all(client, fake_stripe)
    ok(jpost(client, f"/clinics/{w['clinic_id']}/payments/{sheet['payment_id']}/refunds",
             {"amount": 600, "reason": "Компенсация; «ожидание»"}, token=w["admin"]["token"]), 202)
    drain()
    day = "2026-11-24"
    base = f"/clinics/{w['clinic_id']}/payments?date_from={day}&date_to={day}"
    tok = w["admin"]["token"]
    everything = ok(jpost(client, base, token=tok, method="get"))["items"]
    assert sorted(i["kind"] for i in everything) == ["payment", "payment", "refund"]
    assert [i["method"] for i in ok(jpost(client, base + "&method=cash", token=tok, method="get"))["items"]] == ["cash"]
    part = ok(jpost(client, base + "&status=partially_refunded", token=tok, method="get"))["items"]
    assert [i["payment_id"] for i in part] == [sheet["payment_id"]]
    other = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert ok(jpost(client, base + f"&doctor_id={other}", token=tok, method="get"))["items"] == []
    [total] = ok(jpost(client, f"/clinics/{w['clinic_id']}/payments/daily?date_from={day}&date_to={day}",
                       token=tok, method="get"))["items"]
    assert total["paid"] == {"amount": 7200, "currency": "EUR"} and total["refunded"]["amount"] == 600
    assert total["net"]["amount"] == 6600 and total["by_method"]["cash"]["amount"] == 3600
    r = client.http.get(f"/clinics/{w['clinic_id']}/payments/export?date_from={day}&date_to={day}",
                        headers={"Authorization": f"Bearer {tok}", "Accept-Language": "ru"})
    assert r.status_code == 200 and {k.lower(): v for k, v in r.headers.items()}["content-type"].startswith("text/csv")
    text = r.body.decode("utf-8") if isinstance(r.body, bytes) else r.body
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[0][:3] == ["date", "time", "kind"] and len(rows) == 4
    refund_row = next(r for r in rows if r[2] == "refund")
    assert refund_row[-1] == "Компенсация; «ожидание»" and refund_row[7] == "6,00"
    assert any(r[12] == "Консультация кардиолога" for r in rows[1:])


def test_another_clinic_sees_nothing_and_another_patient_nothing(client, w, fake_stripe, outbox, fixed_clock):
    b = hold(client, w)
    p = ok(reception(client, w, b["booking_id"]), 201)
    other_admin = make_staff(client, outbox, fixed_clock, "+79120000011", "clinic_admin")
    from tests.unit.clinic_setup import new_clinic_de

    other = new_clinic_de(client, other_admin)["clinic_id"]
    other_patient = w["patients"][1]
    for token in (other_admin["token"], other_patient["token"]):
        r = jpost(client, f"/payments/{p['payment_id']}", token=token, method="get")
        assert r.status_code == 404
    assert jpost(client, f"/clinics/{w['clinic_id']}/payments?date_from=2026-11-24&date_to=2026-11-24",
                 token=other_admin["token"], method="get").status_code == 404
    assert jpost(client, f"/clinics/{other}/payments/{p['payment_id']}/refunds", {"amount": 1, "reason": "steal"},
                 token=other_admin["token"]).status_code == 404
    assert jpost(client, f"/clinics/{w['clinic_id']}/payments/reception",
                 {"booking_id": b["booking_id"], "method": "cash", "amount": {"amount": 1, "currency": "EUR"}},
                 token=other_admin["token"]).status_code == 404
    assert ok(jpost(client, "/me/payments", token=other_patient["token"], method="get"))["items"] == []
    r = ask_payment(client, other_patient, b["booking_id"])
    assert r.status_code == 404
    r = jpost(client, f"/clinics/{w['clinic_id']}/payments?date_from=2026-11-24&date_to=2026-11-24",
              token=w["patient"]["token"], method="get")
    assert r.status_code == 403


@pytest.mark.parametrize("amount", [12.5, "3600", -1, 0, None, True])
def test_bad_amounts_are_4xx_naming_the_field(client, w, amount):
    b = hold(client, w)
    r = reception(client, w, b["booking_id"], amount=amount)
    assert r.status_code in (400, 422), r.body
    assert any(e["field"].startswith("amount") for e in body(r)["errors"]), body(r)
    if amount == 0:
        return  # spending no cashback is the ordinary case
    r = ask_payment(client, w["patient"], b["booking_id"], spend=amount if amount is not None else "x")
    assert r.status_code in (400, 422) and body(r)["errors"][0]["field"] == "cashback_spend", r.body


def test_wrong_currency_overspend_and_paying_a_cancelled_booking(client, w):
    b = hold(client, w)
    r = reception(client, w, b["booking_id"], currency="RUB")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "amount.currency"
    r = ask_payment(client, w["patient"], b["booking_id"], spend=3600)
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "cashback_spend"
    r = ask_payment(client, w["patient"], b["booking_id"], spend=100)  # no wallet yet: nothing to spend
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "cashback_spend"
    ok(jpost(client, f"/bookings/{b['booking_id']}/cancel", {}, token=w["patient"]["token"]))
    r = ask_payment(client, w["patient"], b["booking_id"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"
    r = reception(client, w, b["booking_id"])
    assert r.status_code == 409 and body(r)["code"] == "wrong_status"


@pytest.mark.parametrize("route, date_to, code", [
    ("daily", "2027-02-25", "range_too_long"),      # 93 days after 2026-11-24
    ("export", "2027-02-25", "range_too_long"),
    ("daily", "2026-11-23", "end_before_start"),
    ("export", "2026-11-23", "end_before_start"),
    ("", "2027-11-26", "range_too_long"),           # 367 days: the transactions' own limit is 366
    ("", "2026-11-23", "end_before_start"),
])
def test_a_date_range_out_of_bounds_is_named_at_date_to(client, w, route, date_to, code):
    path = f"/clinics/{w['clinic_id']}/payments{'/' + route if route else ''}?date_from=2026-11-24&date_to={date_to}"
    r = jpost(client, path, token=w["admin"]["token"], method="get")
    assert r.status_code == 422, r.body
    errors = body(r)["errors"]
    assert errors[0]["field"] == "date_to" and errors[0]["code"] == code, errors
    assert "body" not in [e["field"] for e in errors]


def test_the_longest_ranges_still_answer(client, w):
    for route, date_to in (("/daily", "2027-02-24"), ("", "2027-11-25")):  # 92 and 366 days
        r = jpost(client, f"/clinics/{w['clinic_id']}/payments{route}?date_from=2026-11-24&date_to={date_to}",
                  token=w["admin"]["token"], method="get")
        assert r.status_code == 200, r.body
