"""Real concurrency against DynamoDB Local: one slot, many patients; one queue, two doctors;
and the expiry job reading only what is due among thousands of bookings."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from chalicelib.booking import models as bm
from chalicelib.booking import store as booking_store
from chalicelib.bootstrap import booking as booking_service
from chalicelib.core import aws, db
from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from tests.conftest import jpost
from tests.unit.booking_setup import patient, slots
from tests.unit.clinic_setup import ok, world

N = 12


def caller_of(p, role="patient", mfa="sms"):
    return Caller(user_id=p["user_id"], role=role, session_id="s", mfa=mfa)


def many_patients_from_one_address(monkeypatch):
    """Every test patient signs up from 127.0.0.1; lift the per-address SMS limit for this test only."""
    from tests.conftest import reset_process_state

    monkeypatch.setenv("SMS_PER_CLIENT_PER_HOUR", "1000")
    reset_process_state()


def test_parallel_bookings_of_one_slot_exactly_one_wins(client, outbox, fixed_clock, monkeypatch):
    many_patients_from_one_address(monkeypatch)
    w = world(client, outbox, fixed_clock)
    start = slots(client, w)[0]["start"]
    patients = [patient(client, outbox, f"+7914000{i:04d}") for i in range(N)]
    svc = booking_service()
    req = bm.BookingIn(clinic_id=w["a"]["clinic_id"], service_id=w["service_id"], doctor_id=w["doctor"]["user_id"],
                       start=start)

    def attempt(i):
        try:
            return svc.book(caller_of(patients[i]), req, None)[0]["booking_id"]
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(attempt, range(N)))
    winners = [r for r in results if r not in ("slot_taken",)]
    assert len(winners) == 1, results
    assert results.count("slot_taken") == N - 1
    agenda = booking_store.agenda(w["doctor"]["user_id"], "2026-11-30", "2026-12-01")
    assert [b["booking_id"] for b in agenda if b["status"] == "confirmed"] == winners


def test_two_duty_doctors_taking_at_once_never_get_the_same_patient(client, outbox, fixed_clock, monkeypatch):
    from tests.conftest import make_staff
    from tests.unit.clinic_setup import DOCTOR_PROFILE, invite_doctor

    many_patients_from_one_address(monkeypatch)
    w = world(client, outbox, fixed_clock)
    second = make_staff(client, outbox, fixed_clock, "+79141000001", "doctor")
    fixed_clock.advance(seconds=61)
    invite_doctor(client, outbox, w["admin_a"], w["a"]["clinic_id"], second)
    ok(jpost(client, "/me/doctor-profile", DOCTOR_PROFILE, token=second["token"], method="put"))
    for d in (w["doctor"], second):
        ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{d['user_id']}/duty-shifts",
                 {"branch_id": w["a"]["branch_id"], "specialty": "cardiologist", "starts_at": "2026-11-24T08:00",
                  "ends_at": "2026-11-24T20:00"}, token=w["admin_a"]["token"]), 201)
    svc = booking_service()
    waiting = [patient(client, outbox, f"+7914200{i:04d}") for i in range(6)]
    for p in waiting:
        svc.join_queue(caller_of(p), "cardiologist", bm.UrgentJoin())
    doctors = [caller_of(w["doctor"], "doctor", "totp"), caller_of(second, "doctor", "totp")]

    def take(i):
        try:
            return svc.take_next(doctors[i % 2], "cardiologist")["patient_id"]
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(take, range(8)))
    # each doctor is in one consultation now (it claims their next 30 minutes): two different patients
    # taken, every other take answers doctor_busy, and four patients still wait
    taken = [r for r in results if r not in ("queue_empty", "doctor_busy")]
    assert len(taken) == 2 and len(set(taken)) == 2, results
    assert results.count("doctor_busy") == 6, results
    waiting_now = [svc.queue_status(caller_of(p), "cardiologist")["status"] for p in waiting]
    assert waiting_now.count("waiting") == 4 and waiting_now.count("taken") == 2


class ItemsRead:
    """Counts the items DynamoDB returns to the job (Query, GetItem, BatchGetItem)."""

    def __init__(self):
        self.items = 0

    def __call__(self, http_response=None, parsed=None, model=None, **_):
        if model.name == "Query":
            self.items += parsed.get("ScannedCount", parsed.get("Count", 0))
        elif model.name == "GetItem" and "Item" in parsed:
            self.items += 1
        elif model.name == "BatchGetItem":
            self.items += sum(len(v) for v in parsed.get("Responses", {}).values())


def test_expiry_job_reads_only_the_holds_that_are_due(backend_env, fixed_clock):
    ddb = aws.client("dynamodb")
    table = backend_env["TABLE_NAME"]
    now = fixed_clock.now()

    def booking(i, status, hold_until=None):
        b = {"booking_id": f"{i:026d}", "patient_id": f"P{i % 97}", "doctor_id": f"D{i % 13}", "clinic_id": "C1",
             "branch_id": "B1", "service_id": "S1", "status": status, "time_zone": "Europe/Moscow",
             "start_utc": f"2026-12-{1 + i % 28:02d}T{8 + i % 9:02d}:00:00Z",
             "end_utc": f"2026-12-{1 + i % 28:02d}T{8 + i % 9:02d}:30:00Z", "version": 1, "locks": [],
             "resources": [], "service": {"modality": "in_person", "resource_kinds": []}}
        if hold_until:
            b["hold_until"] = hold_until
        return booking_store.booking_item(b)

    items = [booking(i, "confirmed") for i in range(10_000)]
    items += [booking(10_000 + i, "held", "2026-11-24T05:0%d:00Z" % i) for i in range(10)]  # due
    items += [booking(20_000 + i, "held", "2026-11-24T07:00:00Z") for i in range(5)]  # not yet due
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": db.to_item(x)}}
                                                   for x in items[i:i + 25]]})
    counter = ItemsRead()
    aws.add_hook("after-call.dynamodb", counter)
    try:
        released = booking_service().expire_due_holds()
    finally:
        aws.remove_hook("after-call.dynamodb", counter)
    assert released == 10
    assert counter.items <= 20, counter.items
    assert now == datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
    still_held = booking_store.due_holds("2026-11-24T08:00:00Z")
    assert len(still_held) == 5
