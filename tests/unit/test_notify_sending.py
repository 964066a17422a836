"""One notification service: templates in both languages and the clinic's zone, push through firebase-admin
against the fake FCM server, SMS fallback, the inbox, and each message sent once."""
from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from chalicelib.notify.templates import TEMPLATES, render
from tests.conftest import body, jpost
from tests.unit.notify_setup import another_session, fcm_token, person, register

PHONE = "+79161110001"


# ------------------------------------------------------------------ templates

@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_kind_speaks_russian_and_english(kind):
    params = {"start_utc": "2026-11-30T07:00:00Z", "time_zone": "Europe/Kaliningrad"}
    ru, en = render(kind, "ru", params), render(kind, "en", params)
    assert ru != en and all(ru) and all(en)
    assert any("а" <= ch <= "я" for ch in ru[1].lower()) and not any("а" <= ch <= "я" for ch in en[1].lower())
    if "{time}" in TEMPLATES[kind].en[1]:
        assert "09:00 (Europe/Kaliningrad, UTC+02:00)" in en[1] and "30 ноября 09:00" in ru[1]


@pytest.mark.parametrize("zone, start, shown", [
    ("Europe/Kaliningrad", "2026-11-30T07:00:00Z", "30 Nov 09:00 (Europe/Kaliningrad, UTC+02:00)"),
    ("Asia/Sakhalin", "2026-11-30T22:30:00Z", "1 Dec 09:30 (Asia/Sakhalin, UTC+11:00)"),
    # Berlin across the autumn change: the same 08:00 UTC is 10:00 in summer time and 09:00 after it
    ("Europe/Berlin", "2026-10-24T08:00:00Z", "24 Oct 10:00 (Europe/Berlin, UTC+02:00)"),
    ("Europe/Berlin", "2026-10-26T08:00:00Z", "26 Oct 09:00 (Europe/Berlin, UTC+01:00)"),
])
def test_times_are_shown_on_the_clinics_wall_clock_with_zone_and_offset(zone, start, shown):
    assert shown in render("reminder", "en", {"start_utc": start, "time_zone": zone})[1]


# ------------------------------------------------------------------ push, fallback, once

def test_one_multicast_reaches_every_device_with_a_neutral_payload(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE)
    tokens = [fcm_token() for _ in range(3)]
    register(client, p["token"], tokens[0])
    for i, tok in enumerate(tokens[1:]):
        register(client, another_session(client, outbox, fixed_clock, PHONE, f"d{i}"), tok, platform="ios")
    sms_before = len(outbox.to(PHONE))
    channel = bootstrap.notify().send(p["user_id"], "reminder", "reminder:b1:24",
                                      {"start_utc": "2026-11-30T07:00:00Z", "time_zone": "Europe/Kaliningrad"},
                                      link="booking/01JD6R7B8K9M0N1P2Q3R4S5T6V")
    assert channel == "push"
    assert sorted(fcm.tokens_sent()) == sorted(tokens)
    msg = fcm.sent[0][1]
    assert msg["notification"]["title"] == "Visit reminder"  # the person signed up in English
    assert "30 Nov 09:00 (Europe/Kaliningrad, UTC+02:00)" in msg["notification"]["body"]
    assert msg["data"]["link"] == "booking/01JD6R7B8K9M0N1P2Q3R4S5T6V" and msg["data"]["kind"] == "reminder"
    assert len(outbox.to(PHONE)) == sms_before  # pushed: no SMS
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert inbox["unread"] == 1 and inbox["items"][0]["message_id"] == msg["data"]["message_id"]


def test_the_same_message_key_sends_nothing_twice(client, outbox, fcm):
    p = person(client, outbox, PHONE)
    register(client, p["token"])
    svc = bootstrap.notify()
    assert svc.send(p["user_id"], "recall", "recall:x") == "push"
    assert svc.send(p["user_id"], "recall", "recall:x") == "duplicate"
    assert len(fcm.sent) == 1
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert len(inbox["items"]) == 1 and inbox["unread"] == 1


def test_no_device_means_sms_for_kinds_that_must_arrive_and_inbox_only_for_the_rest(client, outbox, fcm):
    p = person(client, outbox, PHONE)
    before = len(outbox.to(PHONE))
    svc = bootstrap.notify()
    assert svc.send(p["user_id"], "waitlist_offer", "k:1", {"start_utc": "2026-11-30T07:00:00Z",
                                                            "time_zone": "Asia/Sakhalin"}) == "sms"
    assert svc.send(p["user_id"], "recall", "k:2") == "inbox"
    texts = outbox.to(PHONE)[before:]
    assert len(texts) == 1 and "30 Nov 18:00 (Asia/Sakhalin, UTC+11:00)" in texts[0]
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["recall", "waitlist_offer"] and inbox["unread"] == 2


def test_fcm_down_falls_back_to_sms_for_what_must_arrive(client, outbox, fcm):
    p = person(client, outbox, PHONE)
    tok = fcm_token()
    register(client, p["token"], tok)
    fcm.down("UNAVAILABLE")
    before = len(outbox.to(PHONE))
    assert bootstrap.notify().send(p["user_id"], "reminder", "k:down") == "sms"
    assert len(outbox.to(PHONE)) == before + 1
    assert fcm.refused == [(tok, "UNAVAILABLE")]  # one try: the SDK does not sleep through Retry-After
    from chalicelib.notify import store

    assert len(store.devices(p["user_id"])) == 1  # a passing failure removes no device


def test_fcm_down_for_a_whole_run_loses_nothing(client, outbox, fcm, fixed_clock, monkeypatch):
    """A recall (no SMS fallback) while FCM answers 429/503: the outbox retries it with backoff, then
    dead-letters it; the inbox has had it from the first try, and nothing was pushed twice."""
    from chalicelib.core import db
    from chalicelib.core.events import dead_letters

    p = person(client, outbox, PHONE)
    tok = fcm_token()
    register(client, p["token"], tok)
    fcm.down("QUOTA_EXCEEDED")
    tx = db.Tx()
    tx.event("booking.cancelled", {"booking_id": "01JD6R7B8K9M0N1P2Q3R4S5T6V", "patient_id": p["user_id"],
                                   "by": "clinic", "start_utc": "2026-11-30T07:00:00Z",
                                   "time_zone": "Europe/Kaliningrad"})
    tx.commit()
    outbox_ = bootstrap.outbox()
    # a kind with no SMS fallback, carried by a real booking event
    from dataclasses import replace

    from chalicelib.notify import templates

    monkeypatch.setitem(templates.TEMPLATES, "cancelled_by_clinic",
                        replace(templates.TEMPLATES["cancelled_by_clinic"], must_arrive=False))
    sms_before = len(outbox.to(PHONE))
    results = []
    for _ in range(outbox_.max_attempts):
        results.append(outbox_.drain())
        fixed_clock.advance(hours=2)
    assert sum(r.retried for r in results) == outbox_.max_attempts - 1 and sum(r.dead for r in results) == 1
    assert [e["kind"] for e in dead_letters()] == ["booking.cancelled"]
    assert len(fcm.refused) == outbox_.max_attempts and fcm.sent == []
    assert len(outbox.to(PHONE)) == sms_before
    # the person still finds it in the app, once
    later = another_session(client, outbox, fixed_clock, PHONE, "later")
    inbox = body(jpost(client, "/me/inbox", token=later, method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["cancelled_by_clinic"] and inbox["unread"] == 1
    # FCM back: the next try of the same message (an operator re-driving the dead letter) pushes it once
    fcm.down(None)
    key = f"{dead_letters()[0]['event_id']}:cancelled_by_clinic"
    assert bootstrap.notify().send(p["user_id"], "cancelled_by_clinic", key) == "push"
    assert bootstrap.notify().send(p["user_id"], "cancelled_by_clinic", key) == "duplicate"
    assert len(fcm.sent) == 1
    assert body(jpost(client, "/me/inbox", token=later, method="get"))["unread"] == 1


def test_no_medical_detail_in_any_push_or_sms(client, outbox, fcm):
    """Every kind, in both languages: what reaches a lock screen names no service, specialty, diagnosis,
    complaint or doctor, whatever the event carried."""
    secret = {"service": "Колоноскопия", "specialty": "онколог", "complaint": "кровь в стуле",
              "diagnosis": "C18.7", "doctor": "Иванов"}
    ru = person(client, outbox, PHONE)
    svc = bootstrap.notify()
    from chalicelib.core import db
    from chalicelib.identity import store as istore

    register(client, ru["token"])
    for lang in ("en", "ru"):
        db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(istore.user_pk(ru["user_id"]), "PROFILE"),
                             UpdateExpression="SET #l = :l", ExpressionAttributeNames={"#l": "language"},
                             ExpressionAttributeValues=db.values(l=lang))
        for kind in TEMPLATES:
            svc.send(ru["user_id"], kind, f"{lang}:{kind}", {"start_utc": "2026-11-30T07:00:00Z",
                                                             "time_zone": "Europe/Kaliningrad", **secret})
    fcm.down("UNAVAILABLE")
    for kind in TEMPLATES:
        if TEMPLATES[kind].must_arrive:
            svc.send(ru["user_id"], kind, f"sms:{kind}", {"start_utc": "2026-11-30T07:00:00Z", **secret})
    shown = json.dumps([m for _, m in fcm.sent], ensure_ascii=False) + json.dumps(outbox.to(PHONE),
                                                                                   ensure_ascii=False)
    assert len(fcm.sent) == 2 * len([k for k in TEMPLATES if k != "security_notice"])  # that one: SMS only
    for word in secret.values():
        assert word not in shown


def test_owner_notices_go_by_sms_through_notify_once_and_land_in_the_inbox(client, outbox, fcm):
    """identity.owner_notice (a security notice): by SMS to the phone the event names, even with the app
    installed, in the owner's language, once per event, with a copy in the inbox."""
    p = person(client, outbox, PHONE)
    register(client, p["token"])
    before = len(outbox.to(PHONE))
    event = {"event_id": "01M8VGT7BMQQJDNM5NSWGZ7PT3", "kind": "identity.owner_notice",
             "data": {"user_id": p["user_id"], "notice": "second_factor_locked", "phone": PHONE}}
    (name, handler), = bootstrap.outbox().handlers["identity.owner_notice"]
    handler(event)
    handler(event)
    told = outbox.to(PHONE)[before:]
    assert len(told) == 1 and ("too many wrong codes" in told[0] or "неверных код" in told[0])
    assert fcm.sent == []
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["security_notice"]


def test_payments_wallet_and_records_events_tell_the_patient_once_in_their_language(client, outbox, fcm):
    """payment.succeeded, payment.refunded, cashback.earned: the amount in major units (no float), once per
    payment / refund even if its event comes twice; a grant and someone else's read of the card: neutral text,
    a read told once per reader and day, the patient's own reads never."""
    from chalicelib.notify.templates import money

    assert money(650000, "RUB", "en") == "6,500.00 RUB" and money(650000, "RUB", "ru") == "6\u00a0500,00 RUB"
    assert money(1500, "JPY", "en") == "1,500 JPY"
    p = person(client, outbox, PHONE)
    tok = fcm_token()
    register(client, p["token"], tok)
    handlers = bootstrap.outbox().handlers
    uid = p["user_id"]

    def fire(kind, data, eid):
        for name, h in handlers[kind]:
            if name.startswith("notify_"):
                h({"event_id": eid, "kind": kind, "data": data})

    paid = {"payment_id": "pay1", "booking_id": "01M8VGT7BMQQJDNM5NSWGZ7PT3", "patient_id": uid,
            "clinic_id": "c1", "amount": 650000, "currency": "RUB", "method": "card"}
    fire("payment.succeeded", paid, "e1")
    fire("payment.succeeded", paid, "e2")  # the same payment again (a webhook retry): told once
    fire("payment.refunded", {"payment_id": "pay1", "refund_id": "re1", "booking_id": paid["booking_id"],
                              "patient_id": uid, "clinic_id": "c1", "amount": 150000, "currency": "RUB"}, "e3")
    fire("cashback.earned", {"patient_id": uid, "clinic_id": "c1", "entry_id": "cb1", "amount": 65000,
                             "currency": "RUB"}, "e4")
    fire("records.grant_created", {"patient_id": uid, "grant_id": "g1"}, "e5")
    fire("records.card_read", {"patient_id": uid, "reader_id": "doc1"}, "e6")
    fire("records.card_read", {"patient_id": uid, "reader_id": "doc1"}, "e7")  # the same reader, the same day
    fire("records.card_read", {"patient_id": uid, "reader_id": uid}, "e8")  # the patient's own read
    kinds = [m["data"]["kind"] for _, m in fcm.sent]
    assert kinds == ["payment_received", "refund_made", "cashback_earned", "record_shared", "record_viewed"]
    bodies = [m["notification"]["body"] for _, m in fcm.sent]
    assert "6,500.00 RUB" in bodies[0] and "1,500.00 RUB" in bodies[1] and "650.00 RUB" in bodies[2]
    assert fcm.sent[0][1]["data"]["link"] == "payment/pay1"
