"""The care job (preparation, recalls, follow-ups) reads only what is due: 10,000 future items on its index,
50 due now (preparations, recalls and follow-ups mixed); a run reads at most 100 items, a second run nothing."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import bootstrap
from chalicelib.core import aws, clock, db
from chalicelib.core.ids import new_id
from chalicelib.notify import care
from tests.conftest import START, CallCounter
from tests.integration.budget_world import batch_put
from tests.integration.test_notify_reminder_job import ItemsRead

FUTURE = 10_000
DUE = 50


def test_a_care_run_reads_only_what_is_due(backend_env, fixed_clock, outbox):
    from chalicelib.booking import store as bstore
    from chalicelib.identity import store as istore

    now = START
    patient = new_id()
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
        "PK": istore.user_pk(patient), "SK": "PROFILE", "type": "user", "user_id": patient, "phone": "+79161234567",
        "language": "ru"}))
    items = []
    kinds = ("preparation", "follow_up", "preparation", "recall")
    for i in range(FUTURE):
        bid, kind = new_id(), kinds[i % 4]
        at = now - timedelta(minutes=i % 40) if i < DUE else now + timedelta(hours=2) + timedelta(minutes=9 * i)
        start = at + timedelta(hours=20) if kind == "preparation" else at - timedelta(days=180)
        visit = {"booking_id": bid, "patient_id": patient, "start_utc": clock.iso(start), "service_id": "svc",
                 "time_zone": "Asia/Sakhalin", "status": "confirmed" if kind == "preparation" else "completed"}
        items.append({"PK": db.key("CAREDUE", kind, bid), "SK": "DUE", "type": "care_due", "kind": kind, **visit,
                      "due_at": clock.iso(at), "GSI2PK": care.bucket(at), "GSI2SK": f"{clock.iso(at)}#{kind}#{bid}"})
        if i < DUE and kind == "preparation":
            items.append({"PK": bstore.booking_pk(bid), "SK": "BOOKING", "type": "booking", **visit})
    batch_put(items)
    fixed_clock.set(now)

    counter, calls = ItemsRead(), CallCounter()
    aws.add_hook("after-call.dynamodb", counter)
    aws.add_hook("before-call.dynamodb", calls)
    try:
        run = bootstrap.notify().send_due_care(now)
        first = dict(counter.by_op)
        run_calls = list(calls.calls)
        counter.by_op.clear()
        again = bootstrap.notify().send_due_care(now + timedelta(minutes=15))
    finally:
        aws.remove_hook("after-call.dynamodb", counter)
        aws.remove_hook("before-call.dynamodb", calls)
    assert run == {"due": DUE, "sent": DUE, "skipped": 0, "failed": 0}
    preps = len([i for i in range(DUE) if kinds[i % 4] == "preparation"])
    recalls = len([i for i in range(DUE) if kinds[i % 4] == "recall"])
    # selecting: the 50 due items (Query of the CAREDUE# hour partitions), the preparations' bookings (one
    # BatchGetItem); each recall's check that the patient has not booked again reads their later bookings (none)
    assert first.get("BatchGetItem", 0) == preps
    assert first.get("Query", 0) == DUE
    assert first.get("Query", 0) + first.get("BatchGetItem", 0) <= 100
    assert again == {"due": 0, "sent": 0, "skipped": 0, "failed": 0} and sum(counter.by_op.values()) == 0
    assert len(outbox.to("+79161234567")) == DUE - recalls  # recalls are not "must arrive": inbox only
    # the call budget: 7 hour partitions + 1 BatchGetItem + a Query per recall, then per message (no device) the
    # send record, the profile, the create transaction, the claim, the preferences, the devices, delivered, and
    # the item's delete: 8 calls a message
    assert len(run_calls) == 7 + 1 + recalls + DUE * 8, sorted(set(run_calls))
