"""Devices: register, refresh, list, remove, logout, bad input, stale and refused tokens."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import bootstrap
from tests.conftest import body, jpost
from tests.unit.notify_setup import another_session, fcm_token, person, register

PHONE = "+79161110001"


def devices(client, token):
    r = jpost(client, "/me/devices", token=token, method="get")
    assert r.status_code == 200, r.body
    return body(r)["items"]


def test_register_then_re_register_refreshes_the_same_device(client, outbox, fixed_clock):
    p = person(client, outbox, PHONE)
    tok = fcm_token()
    r = register(client, p["token"], tok)
    assert r.status_code == 201, r.body
    first = body(r)
    assert first["platform"] == "android" and first["current"] is True and "token" not in first
    fixed_clock.advance(minutes=10)
    r = register(client, p["token"], tok, app_version="3.3.0")
    assert r.status_code == 200, r.body
    again = body(r)
    assert again["device_id"] == first["device_id"]
    assert again["registered_at"] == first["registered_at"] and again["refreshed_at"] > first["refreshed_at"]
    listed = devices(client, p["token"])
    assert [d["app_version"] for d in listed] == ["3.3.0"]


def test_a_new_token_from_the_same_session_replaces_the_old_one(client, outbox):
    p = person(client, outbox, PHONE)
    register(client, p["token"])
    r = register(client, p["token"])  # FCM rotated the token
    assert r.status_code == 201
    assert [d["device_id"] for d in devices(client, p["token"])] == [body(r)["device_id"]]


def test_bad_device_input_is_a_422_naming_the_field_and_writes_nothing(client, outbox):
    p = person(client, outbox, PHONE)
    cases = {
        "token": {"token": "not a token!"},
        "platform": {"platform": "windows"},
        "time_zone": {"time_zone": "MSK"},
        "language": {"language": "de"},
        "app_version": {"app_version": "3.2.1; drop"},
    }
    for field, over in cases.items():
        r = register(client, p["token"], **over)
        assert r.status_code == 422, (field, r.body)
        doc = body(r)
        assert r.headers["Content-Type"] == "application/problem+json"
        assert [e["field"] for e in doc["errors"]] == [field], (field, doc)
    for zone in ("+03:00", "UTC+3", "Europe/Nowhere"):
        r = register(client, p["token"], time_zone=zone)
        assert r.status_code == 422 and body(r)["errors"][0]["field"] == "time_zone"
    r = jpost(client, "/me/devices", {"token": fcm_token(), "platform": "ios", "app_version": "1",
                                      "language": "ru", "time_zone": "Asia/Sakhalin", "extra": 1}, token=p["token"])
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "extra"
    assert devices(client, p["token"]) == []


def test_another_person_can_neither_see_nor_remove_my_device(client, outbox):
    me = person(client, outbox, PHONE)
    other = person(client, outbox, "+79161110002")
    did = body(register(client, me["token"]))["device_id"]
    assert devices(client, other["token"]) == []
    r = jpost(client, f"/me/devices/{did}", token=other["token"], method="delete")
    assert r.status_code == 404 and body(r)["code"] == "not_found"
    assert len(devices(client, me["token"])) == 1
    assert jpost(client, f"/me/devices/{did}", token=me["token"], method="delete").status_code == 204
    assert devices(client, me["token"]) == []


def test_a_token_taken_over_by_another_account_on_the_same_phone_moves(client, outbox):
    first = person(client, outbox, PHONE)
    second = person(client, outbox, "+79161110002")
    tok = fcm_token()
    register(client, first["token"], tok)
    assert register(client, second["token"], tok).status_code == 201
    assert devices(client, first["token"]) == []
    assert len(devices(client, second["token"])) == 1


def test_logout_stops_every_push_to_that_sessions_device(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE, device="phone")
    tok = fcm_token()
    register(client, p["token"], tok)
    laptop = another_session(client, outbox, fixed_clock, PHONE, "laptop")
    laptop_tok = fcm_token()
    register(client, laptop, laptop_tok, platform="web")
    assert jpost(client, "/auth/logout", token=p["token"]).status_code in (200, 204)
    assert bootstrap.notify().send(p["user_id"], "recall", "t:1") == "push"
    assert fcm.tokens_sent() == [laptop_tok]  # the logged-out phone received nothing
    assert [d["platform"] for d in devices(client, laptop)] == ["web"]


def test_tokens_not_refreshed_for_270_days_are_pruned(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE)
    old, fresh = fcm_token(), fcm_token()
    register(client, p["token"], old)
    fixed_clock.advance(days=200)
    register(client, another_session(client, outbox, fixed_clock, PHONE, "tablet"), fresh)
    fixed_clock.advance(days=71)  # the first token is 271 days old, the second 71
    assert bootstrap.notify().send(p["user_id"], "recall", "t:stale") == "push"
    assert fcm.tokens_sent() == [fresh]
    from chalicelib.notify import store

    assert [d["token"] for d in store.devices(p["user_id"])] == [fresh]
    item = store.devices(p["user_id"])[0]
    assert item["expires_at"] == int((fixed_clock.now() - timedelta(days=71)).timestamp()) + 270 * 86400


def test_tokens_fcm_refuses_for_good_are_removed_at_once(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE)
    good = fcm_token()
    bad = {code: fcm_token() for code in ("UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH")}
    register(client, p["token"], good)
    for code, tok in bad.items():
        register(client, another_session(client, outbox, fixed_clock, PHONE, code), tok)
        fcm.answer(tok, code)
    assert bootstrap.notify().send(p["user_id"], "recall", "t:clean") == "push"
    assert sorted(t for t, _ in fcm.refused) == sorted(bad.values())
    from chalicelib.notify import store

    assert [d["token"] for d in store.devices(p["user_id"])] == [good]
    fcm.refused.clear()
    assert bootstrap.notify().send(p["user_id"], "recall", "t:clean-2") == "push"
    assert fcm.refused == [] and fcm.tokens_sent() == [good, good]


def test_no_token_phone_or_text_in_the_logs(client, outbox, fcm, fixed_clock, logs, capfd):
    p = person(client, outbox, PHONE)
    good, gone = fcm_token(), fcm_token()
    register(client, p["token"], good)
    register(client, another_session(client, outbox, fixed_clock, PHONE, "old"), gone)
    fcm.answer(gone, "UNREGISTERED")
    svc = bootstrap.notify()
    svc.send(p["user_id"], "reminder", "k:1", {"start_utc": "2026-11-30T07:00:00Z", "time_zone": "Europe/Kaliningrad"})
    fcm.down("UNAVAILABLE")
    svc.send(p["user_id"], "reminder", "k:2", {"start_utc": "2026-11-30T07:00:00Z", "time_zone": "Europe/Kaliningrad"})
    text = logs.text() + capfd.readouterr().err
    assert "notify.sent" in logs.text() and "notify.devices_removed" in logs.text()
    for secret in (good, gone, good[:24], PHONE, PHONE[1:], "A reminder of your visit", "Напоминаем"):
        assert secret not in text, secret


def test_many_sign_ins_without_a_send_keep_at_most_twenty_devices(client, outbox, fixed_clock):
    """A phone signed in 30 times (each a new session and token) never grows past the cap; the newest stay."""
    from types import SimpleNamespace

    from chalicelib.core import db
    from chalicelib.identity import store as istore
    from chalicelib.notify import models as m
    from chalicelib.notify import service as notify_service
    from chalicelib.notify import store

    p = person(client, outbox, PHONE)
    svc = bootstrap.notify()
    newest = []
    for i in range(30):
        fixed_clock.advance(minutes=1)
        now = int(fixed_clock.now().timestamp())
        session, _ = bootstrap.identity()._new_session({"user_id": p["user_id"], "role": "patient"}, None, now, "sms")
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(istore.session_item(session)))
        caller = SimpleNamespace(user_id=p["user_id"], session_id=session["session_id"], role="patient")
        tok = fcm_token()
        svc.register_device(caller, m.DeviceIn(token=tok, platform="android", app_version="1.0.0", language="ru",
                                               time_zone="Europe/Kaliningrad"))
        newest.append(tok)
    kept = [d["token"] for d in store.devices(p["user_id"])]
    assert len(kept) <= notify_service.MAX_DEVICES and newest[-1] in kept and newest[0] not in kept


def test_after_a_token_moved_the_old_account_gets_none_of_the_new_ones_pushes(client, outbox, fcm):
    """Account A had the phone's token; B signs in on that phone and registers it: B's messages reach the
    phone, A's do not (A has no device left: its SMS or inbox), even if A's device item outlived the move."""
    from chalicelib.core import db
    from chalicelib.notify import store

    a = person(client, outbox, PHONE)
    b = person(client, outbox, "+79161110002")
    tok = fcm_token()
    assert register(client, a["token"], tok).status_code == 201
    a_device = store.devices(a["user_id"])[0]
    assert register(client, b["token"], tok).status_code == 201
    assert bootstrap.notify().send(b["user_id"], "recall", "moved:b") == "push"
    assert fcm.tokens_sent() == [tok]
    assert bootstrap.notify().send(a["user_id"], "recall", "moved:a") == "inbox"
    assert fcm.tokens_sent() == [tok]  # nothing more went to the phone
    # a device item of A's left behind (a write that raced the move, an old item): still nothing to the phone
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(a_device))
    assert bootstrap.notify().send(a["user_id"], "recall", "moved:a2") == "inbox"
    assert fcm.tokens_sent() == [tok]
    assert devices(client, a["token"]) == [] and store.devices(a["user_id"]) == []  # and it is tidied away
    assert len(devices(client, b["token"])) == 1
