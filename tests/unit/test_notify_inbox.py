"""The in-app inbox: pages with bound cursors, the unread count, mark read, mark all read, and nobody
else's messages."""
from __future__ import annotations

from chalicelib import bootstrap
from tests.conftest import body, jpost
from tests.unit.notify_setup import person

PHONE = "+79161110001"


def get(client, token, path):
    r = jpost(client, path, token=token, method="get")
    return r.status_code, body(r)


def test_the_inbox_pages_newest_first_counts_unread_and_marks_read(client, outbox, fixed_clock):
    me = person(client, outbox, PHONE)
    other = person(client, outbox, "+79161110002")
    svc = bootstrap.notify()
    for i in range(120):  # more than two pages
        fixed_clock.advance(seconds=5)
        assert svc.send(me["user_id"], "recall", f"recall:{i}") == "inbox"
    svc.send(other["user_id"], "recall", "recall:other")

    seen, cursor, pages = [], None, 0
    while True:
        status, page = get(client, me["token"], "/me/inbox?limit=50" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and page["unread"] == 120
        seen += page["items"]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == 3 and len(seen) == 120 and len({m["message_id"] for m in seen}) == 120
    assert [m["created_at"] for m in seen] == sorted((m["created_at"] for m in seen), reverse=True)
    assert not any(m["read"] for m in seen)

    # my cursor is no cursor of someone else's inbox
    _, first = get(client, me["token"], "/me/inbox?limit=50")
    status, problem = get(client, other["token"], f"/me/inbox?limit=50&cursor={first['next_cursor']}")
    assert status == 400 and problem["code"] == "invalid_cursor" and problem["errors"][0]["field"] == "cursor"

    newest = seen[0]["message_id"]
    r = jpost(client, f"/me/inbox/{newest}/read", {}, token=other["token"])
    assert r.status_code == 404  # not theirs: not found, nothing changes
    r = jpost(client, f"/me/inbox/{newest}/read", {}, token=me["token"])
    assert r.status_code == 200 and body(r) == {"unread": 119}
    r = jpost(client, f"/me/inbox/{newest}/read", {}, token=me["token"])
    assert body(r) == {"unread": 119}  # twice changes nothing
    _, page = get(client, me["token"], "/me/inbox?limit=2")
    assert [m["read"] for m in page["items"]] == [True, False] and page["unread"] == 119

    r = jpost(client, "/me/inbox/read-all", {}, token=me["token"])
    assert r.status_code == 200 and body(r) == {"unread": 0}
    _, page = get(client, me["token"], "/me/inbox?limit=100")
    assert page["unread"] == 0 and all(m["read"] for m in page["items"])
    assert get(client, other["token"], "/me/inbox")[1]["unread"] == 1  # the other person's stays

    fixed_clock.advance(seconds=5)
    svc.send(me["user_id"], "recall", "recall:after")
    _, page = get(client, me["token"], "/me/inbox?limit=3")
    assert page["unread"] == 1 and [m["read"] for m in page["items"]] == [False, True, True]
    older = page["items"][1]["message_id"]
    assert body(jpost(client, f"/me/inbox/{older}/read", {}, token=me["token"])) == {"unread": 1}


def test_bad_inbox_input_is_a_4xx_problem(client, outbox):
    me = person(client, outbox, PHONE)
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("sort=asc", "sort")):
        status, problem = get(client, me["token"], f"/me/inbox?{query}")
        assert status == 422 and problem["errors"][0]["field"] == field, (query, problem)
    r = jpost(client, "/me/inbox/not-an-id/read", {}, token=me["token"])
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    assert jpost(client, "/me/inbox/read-all", {}, token=me["token"]).status_code == 200
