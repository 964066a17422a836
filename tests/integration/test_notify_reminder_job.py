"""The reminder job reads only what is due: 10,000 future visits with their reminders, 50 due now; a run reads
the 50 due reminders and their 50 bookings, and a second run reads nothing and sends nothing."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import bootstrap
from chalicelib.core import aws, clock, db
from chalicelib.core.ids import new_id
from chalicelib.notify import reminders
from tests.conftest import START, CallCounter
from tests.integration.budget_world import batch_put

FUTURE = 10_000
DUE = 50


class ItemsRead:
    """Items DynamoDB returned to Query, GetItem and BatchGetItem calls (a botocore after-call hook)."""

    def __init__(self) -> None:
        self.by_op: dict[str, int] = {}

    def __call__(self, http_response=None, parsed=None, model=None, **_) -> None:
        n = len(parsed.get("Items", [])) + (1 if parsed.get("Item") else 0) \
            + sum(len(v) for v in (parsed.get("Responses") or {}).values())
        self.by_op[model.name] = self.by_op.get(model.name, 0) + n


def test_a_run_reads_only_what_is_due(backend_env, fixed_clock, outbox):
    from chalicelib.booking import store as bstore
    from chalicelib.identity import store as istore

    now = START
    patient = new_id()
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item({
        "PK": istore.user_pk(patient), "SK": "PROFILE", "type": "user", "user_id": patient, "phone": "+79161234567",
        "language": "ru"}))
    items, due_ids = [], []
    for i in range(FUTURE):
        bid = new_id()
        # 50 due in the last 40 minutes; the rest spread over the next 60 days
        start = now + timedelta(hours=24) - timedelta(minutes=i % 40) if i < DUE else \
            now + timedelta(hours=30) + timedelta(minutes=9 * i)
        visit = {"booking_id": bid, "patient_id": patient, "start_utc": clock.iso(start),
                 "time_zone": "Asia/Sakhalin", "status": "confirmed"}
        for hours in (24, 2):
            at = reminders.due_at(visit["start_utc"], visit["time_zone"], hours)
            items.append({"PK": db.key("REMINDER", bid), "SK": f"H#{hours}", "type": "reminder", **visit,
                          "hours": hours, "due_at": clock.iso(at), "GSI2PK": reminders.bucket(at),
                          "GSI2SK": f"{clock.iso(at)}#{bid}#{hours}"})
        if i < DUE:
            items.append({"PK": bstore.booking_pk(bid), "SK": "BOOKING", "type": "booking", **visit})
            due_ids.append(bid)
    batch_put(items)
    fixed_clock.set(now)

    counter = ItemsRead()
    calls = CallCounter()
    aws.add_hook("after-call.dynamodb", counter)
    aws.add_hook("before-call.dynamodb", calls)
    try:
        run = bootstrap.notify().send_due_reminders(now)
        first = dict(counter.by_op)
        run_calls = list(calls.calls)
        counter.by_op.clear()
        again = bootstrap.notify().send_due_reminders(now + timedelta(minutes=5))
    finally:
        aws.remove_hook("after-call.dynamodb", counter)
        aws.remove_hook("before-call.dynamodb", calls)
    assert run == {"due": DUE, "sent": DUE, "skipped": 0, "failed": 0}
    # selecting what is due reads the 50 due reminders (Query of the REMIND# hour partitions: nothing of the
    # 19,950 others) and their 50 bookings (one BatchGetItem); sending reads each person's profile (GetItem)
    assert first.get("Query", 0) == DUE and first.get("BatchGetItem", 0) == DUE
    assert first.get("Query", 0) + first.get("BatchGetItem", 0) <= 100
    assert first.get("GetItem", 0) == DUE
    assert again == {"due": 0, "sent": 0, "skipped": 0, "failed": 0} and sum(counter.by_op.values()) == 0
    assert len(outbox.to("+79161234567")) == DUE
    # the job's call budget: 4 hour partitions + 1 BatchGetItem, then per reminder (no device: by SMS) the send
    # record, the profile, the create transaction, the claim, the preferences, the devices, delivered, and
    # the reminder's delete: 8 calls a message
    assert len(run_calls) == 4 + 1 + DUE * 8, sorted(set(run_calls))
