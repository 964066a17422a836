"""Who belongs to a clinic: the last administrator stays, a removed doctor is gone at once and their
future bookings are decided by the clinic, and lists of members never drop anyone."""
from __future__ import annotations

import threading

from chalicelib.core import db
from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from tests.conftest import body, jpost, make_staff
from tests.unit.booking_setup import book, slots
from tests.unit.clinic_setup import new_clinic, ok, world


def invite_admin(client, outbox, admin, cid, other):
    inv = ok(jpost(client, f"/clinics/{cid}/invitations", {"role": "clinic_admin", "phone": other["phone"]},
                   token=admin["token"]), 201)
    ok(jpost(client, "/invitations/accept",
             {"invitation_id": inv["invitation_id"], "code": outbox.last_code(other["phone"])}, token=other["token"]))


def caller(staff, role="clinic_admin"):
    return Caller(user_id=staff["user_id"], role=role, session_id="s", mfa="totp")


def remove_each_other(svc, cid, one, two, serialise_writes=True):
    """Two administrators remove each other at the same moment (two threads released together). Both have
    read everything they read before either writes (the worst interleaving); their writes then reach the table
    one after the other, as DynamoDB serialises conflicting transactions (moto applies a transaction's items one
    by one, so two of them overlapping inside moto could both fail, which DynamoDB never does). On DynamoDB Local
    the writes race for real (``serialise_writes=False``)."""
    from chalicelib.core import aws

    start, writes = threading.Barrier(2), threading.Barrier(2)
    serial = threading.Lock()
    ours: set[int] = set()
    writing: set[int] = set()
    results: dict[str, str] = {}

    def hold_first_write(model=None, **_):
        if threading.get_ident() in ours and model.name in ("DeleteItem", "TransactWriteItems"):
            ours.discard(threading.get_ident())
            try:
                writes.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            if serialise_writes:
                serial.acquire()
                writing.add(threading.get_ident())

    def end_write(**_):
        if threading.get_ident() in writing:
            writing.discard(threading.get_ident())
            serial.release()

    def run(me, them):
        ours.add(threading.get_ident())
        start.wait()
        try:
            svc.remove_admin(caller(me), cid, them["user_id"])
            results[me["user_id"]] = "ok"
        except AppError as exc:
            results[me["user_id"]] = f"{exc.status} {exc.code}"

    aws.add_hook("before-call.dynamodb", hold_first_write)
    aws.add_hook("after-call.dynamodb", end_write)
    try:
        threads = [threading.Thread(target=run, args=(one, two)), threading.Thread(target=run, args=(two, one))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        aws.remove_hook("before-call.dynamodb", hold_first_write)
        aws.remove_hook("after-call.dynamodb", end_write)
    return sorted(results.values())


def two_admin_clinic(client, outbox, fixed_clock, base="+7911000006"):
    one = make_staff(client, outbox, fixed_clock, base + "1", "clinic_admin")
    two = make_staff(client, outbox, fixed_clock, base + "2", "clinic_admin")
    cid = new_clinic(client, one)["clinic_id"]
    invite_admin(client, outbox, one, cid, two)
    return one, two, cid


def test_two_admins_removing_each_other_leave_exactly_one(client, outbox, fixed_clock):
    from chalicelib import bootstrap

    one, two, cid = two_admin_clinic(client, outbox, fixed_clock)
    # moto applies a transaction's items one by one, so the loser may see the caller check fail (404, it is no
    # longer an administrator) before the counter's (409); DynamoDB Local's test holds the exact answer
    loser, winner = remove_each_other(bootstrap.clinics(), cid, one, two)
    assert winner == "ok" and loser in ("409 last_admin", "404 not_found")
    left = [u for u in (one, two) if jpost(client, f"/clinics/{cid}", token=u["token"], method="get").status_code == 200]
    assert len(left) == 1
    admins = ok(jpost(client, f"/clinics/{cid}/admins", token=left[0]["token"], method="get"))["items"]
    assert [a["user_id"] for a in admins] == [left[0]["user_id"]]


def test_last_admin_stays_also_for_a_clinic_without_a_counter(client, outbox, fixed_clock):
    """Clinics created before the counter: it is computed once, then kept."""
    from chalicelib.clinics import store

    one, two, cid = two_admin_clinic(client, outbox, fixed_clock, "+7911000007")
    db.ddb().update_item(TableName=db.table_name(), Key=db.item_key(store.clinic_pk(cid), "PROFILE"),
                         UpdateExpression="REMOVE admin_count")
    assert jpost(client, f"/clinics/{cid}/admins/{two['user_id']}", token=one["token"],
                 method="delete").status_code == 204
    r = jpost(client, f"/clinics/{cid}/admins/{one['user_id']}", token=one["token"], method="delete")
    assert r.status_code == 409 and body(r)["code"] == "last_admin"


# ------------------------------------------------------------------ removing a doctor

def removal(client, w, decision=None):
    path = f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}"
    payload = {"future_bookings": decision} if decision else None
    return jpost(client, path, payload, token=w["admin_a"]["token"], method="delete")


def events_of(kind):
    items = db.ddb().scan(TableName=db.table_name())["Items"]  # test inspection only
    return [db.from_item(i) for i in items if i.get("type", {}).get("S") == "event" and i["kind"]["S"] == kind]


def test_removing_a_doctor_with_future_bookings_needs_the_clinics_decision(client, outbox, fixed_clock):
    from chalicelib.clinics import access

    w = world(client, outbox, fixed_clock)
    first = slots(client, w)[0]
    booked = ok(book(client, w, w["patient"]["token"], first["start"]), 201)
    r = removal(client, w)
    assert r.status_code == 409 and body(r)["code"] == "doctor_has_future_bookings"
    listed = body(r)["bookings"]
    assert [b["booking_id"] for b in listed] == [booked["booking_id"]]
    assert listed[0]["start"]["local"] == "2026-11-30T09:00+02:00"
    assert listed[0]["start"]["time_zone"] == "Europe/Kaliningrad"
    # nothing was half-removed: the doctor still works here
    assert access.is_doctor_of(w["a"]["clinic_id"], w["doctor"]["user_id"])
    assert events_of("clinic.doctor_removed") == []
    assert len(ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors", token=w["admin_a"]["token"],
                        method="get"))["items"]) == 1

    assert removal(client, w, "cancel").status_code == 204
    assert not access.is_doctor_of(w["a"]["clinic_id"], w["doctor"]["user_id"])
    [event] = events_of("clinic.doctor_removed")
    assert event["data"] == {"clinic_id": w["a"]["clinic_id"], "doctor_id": w["doctor"]["user_id"],
                             "future_bookings": "cancel"}
    doctors = ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors", token=w["admin_a"]["token"],
                       method="get"))["items"]
    assert doctors == []
    assert ok(client.http.get("/catalog/doctors?specialty=cardiologist"))["items"] == []


def test_a_decision_must_be_one_of_two(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    r = removal(client, w, "forget")
    assert r.status_code == 422 and body(r)["errors"][0]["field"] == "future_bookings"


def test_a_removal_that_stopped_half_way_is_finished_by_a_retry(client, outbox, fixed_clock, monkeypatch):
    from chalicelib.clinics import access, store

    w = world(client, outbox, fixed_clock)
    cid, did = w["a"]["clinic_id"], w["doctor"]["user_id"]
    # many duty shifts ahead in this clinic: the cleanup needs several transactions
    from datetime import timedelta

    for i in range(250):
        start = fixed_clock.now() + timedelta(days=i + 1, hours=12)
        store.put_schedule_item(store.duty_shift_item(did, cid, w["a"]["branch_id"], "cardiologist",
                                                      "Europe/Kaliningrad", start, start + timedelta(hours=8), 0))
    commits = {"n": 0}
    real = db.Tx.commit

    def flaky(self):
        commits["n"] += 1
        if commits["n"] == 3:
            raise RuntimeError("the Lambda ran out of time")
        return real(self)

    monkeypatch.setattr(db.Tx, "commit", flaky)
    r = removal(client, w, "keep_for_reassignment")
    assert r.status_code == 500
    monkeypatch.setattr(db.Tx, "commit", real)
    # the doctor lost access at once, although the cleanup stopped
    assert not access.is_doctor_of(cid, did)
    assert ok(jpost(client, f"/clinics/{cid}/doctors", token=w["admin_a"]["token"], method="get"))["items"] == []
    assert removal(client, w).status_code == 204  # the retry finishes with the first decision
    assert store.get_child(cid, "DOCTOR", did) is None
    assert [i for i in store.schedule_for(did, "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
            if i["clinic_id"] == cid] == []
    [event] = events_of("clinic.doctor_removed")
    assert event["data"]["future_bookings"] == "keep_for_reassignment"
    assert removal(client, w).status_code == 404


# ------------------------------------------------------------------ lists never drop anyone

def test_more_than_a_hundred_invitations_and_doctors_are_all_read(client, outbox, fixed_clock):
    from chalicelib.clinics import store
    from chalicelib.core.ids import new_id

    w = world(client, outbox, fixed_clock)
    cid, tok = w["a"]["clinic_id"], w["admin_a"]["token"]
    now = int(fixed_clock.now().timestamp())
    for _ in range(120):
        iid = new_id()
        db.put_new(store.invitation_item({"invitation_id": iid, "clinic_id": cid, "role": "doctor", "channel": "sms",
                                          "phone": "+79110009999", "status": "pending", "attempts": 0,
                                          "created_at": now, "expires_at": now + 3600}))
    assert len(store.clinic_invitations(cid)) == 121
    seen, cursor = [], None
    while True:
        page = ok(jpost(client, f"/clinics/{cid}/invitations?limit=50" + (f"&cursor={cursor}" if cursor else ""),
                        token=tok, method="get"))
        seen += [i["invitation_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 121
    # a cursor of one list is refused by another
    first = ok(jpost(client, f"/clinics/{cid}/invitations?limit=1", token=tok, method="get"))
    r = jpost(client, f"/clinics/{cid}/branches?cursor={first['next_cursor']}", token=tok, method="get")
    assert r.status_code == 400 and body(r)["code"] == "invalid_cursor"

    did = w["doctor"]["user_id"]
    for _ in range(110):
        db.put_new(store.doctor_membership_item(new_id(), did, now))
    assert len(store.doctor_memberships(did)) == 111
    for _ in range(105):
        other = new_id()
        db.put_new(store.admin_item(other, w["admin_a"]["user_id"], now))
    assert len(store.clinics_of_admin(w["admin_a"]["user_id"])) == 106
    for _ in range(104):
        db.put_new(store.admin_item(cid, new_id(), now))
    assert len(store.admins(cid)) == 105
    page = ok(jpost(client, f"/clinics/{cid}/admins?limit=100", token=tok, method="get"))
    rest = ok(jpost(client, f"/clinics/{cid}/admins?limit=100&cursor={page['next_cursor']}", token=tok,
                    method="get"))
    assert len(page["items"]) + len(rest["items"]) == 105 and rest["next_cursor"] is None


def test_every_staff_list_pages(client, outbox, fixed_clock):
    w = world(client, outbox, fixed_clock)
    cid, tok = w["a"]["clinic_id"], w["admin_a"]["token"]
    for path in ("/me/clinics", f"/clinics/{cid}/admins", f"/clinics/{cid}/invitations", f"/clinics/{cid}/branches",
                 f"/clinics/{cid}/services", f"/clinics/{cid}/resources", f"/clinics/{cid}/doctors"):
        page = ok(jpost(client, path + "?limit=1", token=tok, method="get"))
        assert len(page["items"]) <= 1 and "next_cursor" in page, path
        assert jpost(client, path + "?limit=101", token=tok, method="get").status_code == 422, path
