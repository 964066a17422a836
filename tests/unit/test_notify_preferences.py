"""Preferences per category and channel, and quiet hours in the person's zone."""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib import bootstrap
from tests.conftest import body, jpost
from tests.unit.notify_setup import fcm_token, person, register

PHONE = "+79161110001"
UTC = timezone.utc


def put(client, token, payload):
    return jpost(client, "/me/notification-settings", payload, token=token, method="put")


def test_nonsense_settings_are_a_422_naming_the_field(client, outbox):
    p = person(client, outbox, PHONE)
    cases = [
        ({"service": {"push": False, "sms": False}}, "service"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours.end"),
        ({"time_zone": "MSK"}, "time_zone"),
        ({"recall": {"push": "no"}}, "recall.push"),
        ({"marketing": {"push": True}}, "marketing"),
    ]
    for payload, field in cases:
        r = put(client, p["token"], payload)
        assert r.status_code == 422, (payload, r.body)
        assert [e["field"] for e in body(r)["errors"]] == [field], (payload, body(r))
    r = jpost(client, "/me/notification-settings", token=p["token"], method="get")
    assert body(r)["quiet_hours"] == {"start": "22:00", "end": "08:00"}  # nothing was written


def test_recalls_can_be_switched_off_and_service_messages_moved_to_sms(client, outbox, fcm):
    p = person(client, outbox, PHONE)
    register(client, p["token"])
    r = put(client, p["token"], {"service": {"push": False, "sms": True}, "recall": {"push": False, "sms": False},
                                 "quiet_hours": None})
    assert r.status_code == 200 and body(r)["recall"] == {"push": False, "sms": False} and "quiet_hours" not in body(r)
    before = len(outbox.to(PHONE))
    svc = bootstrap.notify()
    assert svc.send(p["user_id"], "recall", "r:1") == "inbox"
    assert svc.send(p["user_id"], "reminder", "r:2", {"start_utc": "2026-11-30T07:00:00Z",
                                                      "time_zone": "Europe/Kaliningrad"}) == "sms"
    assert fcm.sent == [] and len(outbox.to(PHONE)) == before + 1
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert [i["kind"] for i in inbox["items"]] == ["reminder", "recall"]  # the inbox has everything


def test_quiet_hours_hold_what_can_wait_until_morning_in_the_persons_zone(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE)
    tok = fcm_token()
    register(client, p["token"], tok, time_zone="Asia/Sakhalin")  # UTC+11
    svc = bootstrap.notify()
    fixed_clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # 00:00 on Sakhalin
    assert svc.send(p["user_id"], "recall", "q:recall") == "held"
    assert svc.send(p["user_id"], "waitlist_offer", "q:offer", {"start_utc": "2026-11-25T00:00:00Z",
                                                                "time_zone": "Asia/Sakhalin"}) == "push"
    assert [m["data"]["kind"] for _, m in fcm.sent] == ["waitlist_offer"]  # an offer for 15 minutes cannot wait
    from chalicelib.notify import store

    items, _ = store.inbox_page(p["user_id"], 10, None)
    assert sorted(i["kind"] for i in items) == ["recall", "waitlist_offer"]  # held, but already in the inbox

    fixed_clock.set(datetime(2026, 11, 24, 20, 59, tzinfo=UTC))  # 07:59 on Sakhalin
    assert svc.release_held(fixed_clock.now()) == {"sent": 0, "failed": 0, "lapsed": 0}
    fixed_clock.set(datetime(2026, 11, 24, 21, 0, tzinfo=UTC))  # 08:00
    assert svc.release_held(fixed_clock.now()) == {"sent": 1, "failed": 0, "lapsed": 0}
    assert [m["data"]["kind"] for _, m in fcm.sent] == ["waitlist_offer", "recall"]
    fixed_clock.set(datetime(2026, 11, 24, 21, 5, tzinfo=UTC))
    assert svc.release_held(fixed_clock.now()) == {"sent": 0, "failed": 0, "lapsed": 0}  # once
    assert len(fcm.sent) == 2


def test_quiet_hours_follow_the_zone_the_person_chose(client, outbox, fcm, fixed_clock):
    p = person(client, outbox, PHONE)
    register(client, p["token"], time_zone="Asia/Sakhalin")
    assert put(client, p["token"], {"quiet_hours": {"start": "23:00", "end": "07:30"},
                                    "time_zone": "Europe/Kaliningrad"}).status_code == 200
    svc = bootstrap.notify()
    fixed_clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # 15:00 in Kaliningrad, midnight on Sakhalin
    assert svc.send(p["user_id"], "recall", "z:1") == "push"
    fixed_clock.set(datetime(2026, 11, 24, 21, 30, tzinfo=UTC))  # 23:30 in Kaliningrad
    assert svc.send(p["user_id"], "recall", "z:2") == "held"
    fixed_clock.set(datetime(2026, 11, 25, 5, 30, tzinfo=UTC))  # 07:30 in Kaliningrad
    assert svc.release_held(fixed_clock.now()) == {"sent": 1, "failed": 0, "lapsed": 0}


def test_a_put_without_a_body_is_refused(client, outbox):
    """Found by the fuzzer: a PUT with no body answered 200 and reset the settings."""
    p = person(client, outbox, PHONE)
    assert put(client, p["token"], {"quiet_hours": None}).status_code == 200
    r = client.http.put("/me/notification-settings", headers={"Authorization": f"Bearer {p['token']}"})
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "body"
    r = jpost(client, "/me/notification-settings", token=p["token"], method="get")
    assert "quiet_hours" not in body(r)  # unchanged (the defaults would show 22:00-08:00)
