"""Notify under real concurrency on DynamoDB Local: a message sent once however many senders race, an unread
count that matches the inbox while messages arrive and are read, one owner per device token."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from chalicelib import bootstrap
from chalicelib.core import db
from chalicelib.core.errors import AppError
from chalicelib.notify import models as m
from chalicelib.notify import store
from tests.conftest import body, jpost
from tests.unit.notify_setup import another_session, fcm, fcm_token, person, register  # noqa: F401

PHONE = "+79161110001"
N = 8


def parallel(fn, n=N):
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
    out = []
    for f in futures:
        try:
            out.append(f.result())
        except AppError as exc:
            out.append(exc.code)
    return out


def test_eight_senders_of_one_message_push_each_device_once(fcm, client, outbox, fixed_clock):
    p = person(client, outbox, PHONE)
    tokens = [fcm_token() for _ in range(3)]
    register(client, p["token"], tokens[0])
    for i, tok in enumerate(tokens[1:]):
        register(client, another_session(client, outbox, fixed_clock, PHONE, f"d{i}"), tok)
    svc = bootstrap.notify()
    results = parallel(lambda i: svc.send(p["user_id"], "reminder", "reminder:visit:24",
                                          {"start_utc": "2026-11-30T07:00:00Z", "time_zone": "Asia/Sakhalin"}))
    assert results.count("push") == 1 and results.count("duplicate") == N - 1, results
    assert sorted(fcm.tokens_sent()) == sorted(tokens)
    inbox = body(jpost(client, "/me/inbox", token=p["token"], method="get"))
    assert len(inbox["items"]) == 1 and inbox["unread"] == 1


def test_the_unread_count_matches_the_inbox_while_messages_arrive_and_are_read(backend_env, client, outbox,
                                                                             fixed_clock):
    p = person(client, outbox, PHONE)
    svc = bootstrap.notify()
    for i in range(120):
        svc.send(p["user_id"], "recall", f"before:{i}")
    caller = SimpleNamespace(user_id=p["user_id"], session_id="s", role="patient")
    first = svc.inbox(caller, m.InboxQuery(limit=100))
    to_read = [i.message_id for i in first.items[:40]]

    def work(i: int):
        if i % 2:
            for k in range(10):
                svc.send(p["user_id"], "recall", f"during:{i}:{k}")
        elif i == 0:
            svc.mark_all_read(caller)
        else:
            for mid in to_read[i::N]:
                svc.mark_read(caller, mid)

    results = parallel(work)
    assert all(r is None for r in results), results
    items = db.query_prefix(store.user_pk(p["user_id"]), "INBOX#", consistent=True)
    state = store.inbox_state(p["user_id"])
    watermark = state.get("read_before") or ""
    unread = [i for i in items if not i["read"] and i["message_id"] > watermark]
    assert len(items) == 160
    assert int(state["unread"]) == len(unread)


def test_one_token_two_accounts_at_once_ends_with_one_owner(backend_env, client, outbox, fixed_clock):
    people = [person(client, outbox, f"+7916111000{i}") for i in range(4)]
    tok = fcm_token()
    svc = bootstrap.notify()
    callers = [SimpleNamespace(user_id=x["user_id"], session_id=f"s{i}", role="patient") for i, x in enumerate(people)]
    body_ = m.DeviceIn(token=tok, platform="android", app_version="1.0.0", language="ru", time_zone="Europe/Moscow")
    results = parallel(lambda i: svc.register_device(callers[i % 4], body_)[1], n=8)
    assert all(r in (True, False, "version_conflict") for r in results), results
    holders = [x["user_id"] for x in people if store.devices(x["user_id"])]
    owner = store.token_owner(store.device_id(tok))
    assert len(holders) == 1 and owner is not None and owner["user_id"] == holders[0]
