"""Free slots against a simple model, over random schedules, leave and booking histories.

Each example: a new branch in a random zone (Europe/Kaliningrad, Europe/Berlin, Asia/Sakhalin)
with one resource of capacity 1 or 2, two new doctors with the same random weekly templates
(0-2 windows a weekday, on a quarter-hour grid, often across the night's DST hours) and their
own random leave (entered by this clinic, by another clinic the doctor also works for, or by the
doctor themselves), sometimes a night window past midnight (22:00-02:00, or ending at midnight),
a random service (with or without the resource), a clock somewhere in a nine-day window that holds
a DST change (29 March or 25 October 2026), and a random run of bookings, cancellations,
reschedules, urgent consultations (a duty doctor takes a patient for the next 30 minutes) and
clock moves through the booking service.

The model, computed here without the app's code: for each local day and template window,
convert the window's ends with zoneinfo (a wall time in a gap moves forward to the first wall
time that exists; a time in the fold is its first occurrence; an end at or before the start is
the next day's), cut out this clinic's and the doctor's own leave (never another clinic's), step
by the service's duration from each piece's start, keep the slots that start on the days asked;
a booking is refused when the patient is in another visit then (with either doctor), and an
urgent take when the doctor or the patient is; drop slots that overlap the doctor's live bookings,
that find no free unit of the resource (units taken first-fit, as the service does), and that
start within the notice window. After every step the service's free slots equal the model's,
every operation's outcome is the one the model expects, and no two live bookings share a
doctor's, a patient's or a resource unit's time.

Leave, branches, resources and bookings go through the clinic and booking services with callers
built here. For speed, a doctor joins the clinic by writing the membership item directly and the
weekly templates are written as the items ``add_template`` writes, in one transaction (the
invitation flow and the template overlap checks have their own tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.booking import models as bm
from chalicelib.booking import store as bstore
from chalicelib.clinics import models as cm
from chalicelib.clinics import store as cstore
from chalicelib.core import db
from chalicelib.core.errors import AppError
from chalicelib.core.ids import new_id
from chalicelib.core.web import Caller
from tests.conftest import jpost
from tests.unit.clinic_setup import SERVICE, ok, world

UTC = timezone.utc
ZONES = ("Europe/Kaliningrad", "Europe/Berlin", "Asia/Sakhalin")
CHANGES = (date(2026, 3, 29), date(2026, 10, 25))  # Sundays the clocks change in Berlin
NOTICE = timedelta(minutes=60)  # the clinic's default minimum notice
URGENT = timedelta(minutes=30)  # an urgent consultation claims the duty doctor from the moment they take it
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXAMPLES = int(__import__("os").environ.get("SLOT_EXAMPLES", "25"))

# ------------------------------------------------------------------ the model


def to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """Wall time to UTC by brute force: fold=0; in a gap, the next minute whose wall time exists."""
    t = datetime.combine(day, wall)
    while True:
        aware = t.replace(tzinfo=tz)
        if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == t:
            return aware.astimezone(UTC)
        t += timedelta(minutes=1)


def cut(pieces, hole):
    hs, he = hole
    out = []
    for s, e in pieces:
        if he <= s or hs >= e:
            out.append((s, e))
            continue
        if s < hs:
            out.append((s, hs))
        if he < e:
            out.append((he, e))
    return out


def overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class Booking:
    booking_id: str
    doctor: int
    patient: int
    start: datetime
    end: datetime
    unit: int | None
    live: bool = True
    kind: str = "scheduled"


@dataclass
class Model:
    zone: str
    templates: list[tuple[int, time, time]]       # weekday, start, end (the same for both doctors); an end at
    #                                               or before the start runs past midnight
    leaves: list[list[tuple[date, time | None, time | None, str]]]  # per doctor; source: clinic | other | doctor
    duration: timedelta
    capacity: int                                 # units of the resource; 0 if the service needs none
    d_from: date
    d_to: date
    bookings: list[Booking] = field(default_factory=list)

    def holes(self, doctor: int) -> list[tuple[datetime, datetime]]:
        """The doctor's leave that counts in this clinic: this clinic's and the doctor's own."""
        tz = ZoneInfo(self.zone)
        holes = []
        for day, start, end, source in self.leaves[doctor]:
            if source == "other":
                continue  # another clinic's leave takes nothing from this clinic's time
            if start is None:
                holes.append((to_utc(day, time(0), tz), to_utc(day + timedelta(days=1), time(0), tz)))
            else:
                holes.append((to_utc(day, start, tz), to_utc(day, end, tz)))
        return holes

    def candidates(self, doctor: int) -> list[tuple[datetime, datetime]]:
        """The doctor's working time minus leave, cut into back-to-back slots (no bookings, no notice)."""
        tz = ZoneInfo(self.zone)
        holes = self.holes(doctor)
        out = []
        day = self.d_from - timedelta(days=1)  # a night window of the day before reaches into the first day
        while day <= self.d_to:
            for wd, start, end in self.templates:
                if wd != day.weekday():
                    continue
                end_day = day + timedelta(days=1) if end <= start else day
                if to_utc(day, start, tz) >= to_utc(end_day, end, tz):
                    continue
                pieces = [(to_utc(day, start, tz), to_utc(end_day, end, tz))]
                for h in holes:
                    pieces = cut(pieces, h)
                for s, e in pieces:
                    t = s
                    while t + self.duration <= e:
                        if self.d_from <= t.astimezone(tz).date() <= self.d_to:  # a slot is its start's day
                            out.append((t, t + self.duration))
                        t += self.duration
            day += timedelta(days=1)
        return sorted(out)

    def live(self, now: datetime) -> list[Booking]:
        return [b for b in self.bookings if b.live]

    def unit_for(self, slot, now: datetime, ignore: str | None = None) -> int | None:
        """The first unit free for the whole slot (first-fit); -1 when the service needs no resource."""
        if not self.capacity:
            return -1
        for u in range(self.capacity):
            if not any(b.unit == u and overlaps(slot, (b.start, b.end)) for b in self.live(now)
                       if b.booking_id != ignore):
                return u
        return None

    def bookable(self, doctor: int, slot, now: datetime, ignore: str | None = None,
                 patient: int | None = None) -> bool:
        if slot[0] < now + NOTICE:
            return False
        if any(b.doctor == doctor and overlaps(slot, (b.start, b.end)) for b in self.live(now)
               if b.booking_id != ignore):
            return False
        if patient is not None and any(b.patient == patient and overlaps(slot, (b.start, b.end))
                                       for b in self.live(now) if b.booking_id != ignore):
            return False  # one patient is never in two visits at once, with either doctor
        return self.unit_for(slot, now, ignore) is not None

    def can_take(self, doctor: int, patient: int, now: datetime) -> bool:
        """An urgent consultation (now, now + 30 min) needs the doctor and the patient free for all of it, and the
        doctor not on leave then (this clinic's or their own; a duty shift does not override a leave)."""
        consult = (now, now + URGENT)
        if any(overlaps(consult, h) for h in self.holes(doctor)):
            return False
        return not any((b.doctor == doctor or b.patient == patient) and overlaps(consult, (b.start, b.end))
                       for b in self.live(now))

    def free(self, doctor: int, now: datetime) -> list[tuple[datetime, datetime]]:
        return [s for s in self.candidates(doctor) if self.bookable(doctor, s, now)]


# ------------------------------------------------------------------ scenarios

QUARTERS = st.integers(min_value=0, max_value=95)  # quarter-hours of a day, 00:00 .. 23:45


def q(n: int) -> time:
    return time(n // 4, n % 4 * 15)


@st.composite
def day_windows(draw, wd: int):
    """0-2 disjoint windows on one weekday; Sundays lean to the night hours the clocks change in."""
    if wd == 6 and draw(st.booleans()):
        points = sorted(draw(st.sets(st.integers(min_value=0, max_value=20), min_size=2, max_size=4)))
    else:
        points = sorted(draw(st.sets(QUARTERS, min_size=0, max_size=4)))
    points = points[: len(points) // 2 * 2]
    return [(wd, q(points[i]), q(points[i + 1])) for i in range(0, len(points), 2)]


@st.composite
def scenarios(draw):
    zone = draw(st.sampled_from(ZONES))
    change = draw(st.sampled_from(CHANGES))
    d_from, d_to = change - timedelta(days=6), change + timedelta(days=2)
    templates = [w for wd in range(7) for w in draw(day_windows(wd)) if draw(st.integers(0, 2)) or wd == 6]
    # a night window (22:00-02:00 and the like, or one ending at midnight) on some weekday; the next weekday's
    # windows start after it ends
    if draw(st.booleans()):
        wd = draw(st.integers(0, 6))
        start, end = q(draw(st.integers(80, 95))), q(draw(st.integers(0, 10)))
        templates = [t for t in templates if not (t[0] == wd and t[2] > start or t[0] == wd and t[2] <= t[1])
                     and not (t[0] == (wd + 1) % 7 and t[1] < end)] + [(wd, start, end)]
    leaves = []
    for _ in range(2):
        mine = []
        for _ in range(draw(st.integers(0, 3))):
            day = d_from + timedelta(days=draw(st.integers(0, 8)))
            source = draw(st.sampled_from(("clinic", "other", "doctor")))
            if draw(st.booleans()):
                mine.append((day, None, None, source))
            else:
                a, b = sorted(draw(st.sets(QUARTERS, min_size=2, max_size=2)))
                mine.append((day, q(a), q(b), source))
        leaves.append(mine)
    service = draw(st.sampled_from(("consult30", "consult45", "scan30")))
    capacity = draw(st.integers(1, 2)) if service == "scan30" else 0
    # the clock starts between one day before the window and its sixth day
    start = datetime.combine(d_from, time(0), UTC) + timedelta(minutes=draw(st.integers(-24 * 60, 6 * 24 * 60)))
    ops = draw(st.lists(st.one_of(
        st.tuples(st.just("book"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 10 ** 6),
                  st.booleans()),
        st.tuples(st.just("cancel"), st.integers(0, 10 ** 6)),
        st.tuples(st.just("reschedule"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.booleans()),
        st.tuples(st.just("advance"), st.integers(5, 12 * 60)),
        st.tuples(st.just("urgent"), st.integers(0, 1), st.integers(0, 2)),
    ), min_size=3, max_size=9))
    return {"zone": zone, "d_from": d_from, "d_to": d_to, "templates": templates, "leaves": leaves,
            "service": service, "capacity": capacity, "start": start, "ops": ops}


# ------------------------------------------------------------------ the app's side

def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inst(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class App:
    def __init__(self, w, fixed_clock) -> None:
        from chalicelib.bootstrap import booking, clinics

        self.w, self.clock = w, fixed_clock
        self.clinics, self.booking = clinics(), booking()
        self.cid = w["a"]["clinic_id"]
        self.admin = Caller(user_id=w["admin_a"]["user_id"], role="clinic_admin", session_id="s", mfa="totp")
        self.patients = [Caller(user_id=new_id(), role="patient", session_id="p", mfa="sms") for _ in range(3)]

    def prepare(self, sc) -> None:
        self.zone = sc["zone"]
        self.branch = self.clinics.add_branch(self.admin, self.cid, cm.BranchIn(
            name={"ru": "Филиал", "en": "Branch"}, address="ул. Ленина, 1", city="Город", time_zone=sc["zone"]))["branch_id"]
        if sc["capacity"]:
            self.clinics.add_resource(self.admin, self.cid, self.branch,
                                      cm.ResourceIn(kind="scan", name="Scanner", capacity=sc["capacity"]))
        self.doctors = []
        for leaves in sc["leaves"]:
            did = new_id()
            db.put_new({**cstore.doctor_membership_item(self.cid, did, int(self.clock.now().timestamp())),
                        "specialties": [SERVICE["specialty"]]})  # the services name the doctors' specialty
            # the items add_template writes (it is tested with the clinic; through it, each window costs
            # ten calls of overlap checks and listing refreshes, which made this test minutes long)
            items = []
            for wd, s, e in sc["templates"]:
                req = cm.TemplateIn(branch_id=self.branch, modality="in_person", weekday=WEEKDAYS[wd], start=s, end=e)
                tid = new_id()
                items.append({"PK": cstore.doctor_pk(did), "SK": db.key("TEMPLATE", tid), "type": "schedule_template",
                              "item_id": tid, "doctor_id": did, "clinic_id": self.cid, "time_zone": sc["zone"],
                              **req.model_dump(mode="json", exclude_none=True), "start": s.strftime("%H:%M"),
                              "end": e.strftime("%H:%M"), "created_at": int(self.clock.now().timestamp())})
            if items:
                tx = db.Tx()
                for n, i in enumerate(items):
                    tx.put(f"template{n}", i)
                tx.commit()
            for day, s, e, source in leaves:
                if source == "clinic":
                    self.clinics.add_exception(self.admin, self.cid, did, cm.ExceptionIn(
                        kind="leave", date_from=day, date_until=day, start=s, end=e))
                elif source == "doctor":
                    self.clinics.add_my_leave(Caller(user_id=did, role="doctor", session_id="d", mfa="totp"),
                                              cm.DoctorLeaveIn(date_from=day, date_until=day, start=s, end=e))
                else:  # another clinic's leave of this doctor, as its administrator would add it
                    fields = {"kind": "leave", "date_from": day.isoformat(), "date_until": day.isoformat(),
                              "source": "clinic", **({"start": s.strftime("%H:%M"), "end": e.strftime("%H:%M")}
                                                     if s else {})}
                    cstore.put_schedule_item(cstore.exception_item(did, self.w["b"]["clinic_id"], new_id(), fields,
                                                                   None, int(self.clock.now().timestamp())))
            self.doctors.append(did)
        self.service_id = self.w["services"][sc["service"]]

    def free(self, doctor: int, d_from: date, d_to: date) -> list[tuple[datetime, datetime]]:
        got = self.booking.free_slots(self.doctors[doctor], bm.SlotsQuery(
            clinic_id=self.cid, service_id=self.service_id, branch_id=self.branch, date_from=d_from, date_to=d_to))
        assert all(i["branch_id"] == self.branch for i in got["items"])
        return [(inst(i["start"]), inst(i["end"])) for i in got["items"]]

    def book(self, doctor: int, patient: int, start: datetime) -> dict:
        b, created = self.booking.book(self.patients[patient], bm.BookingIn(
            clinic_id=self.cid, service_id=self.service_id, doctor_id=self.doctors[doctor], start=iso(start)), None)
        assert created
        return b

    def urgent(self, doctor: int, patient: int) -> dict:
        """The doctor on a duty shift now takes the patient from a queue of their own (one per try)."""
        did, now = self.doctors[doctor], self.clock.now()
        specialty = "s" + new_id().lower()
        cstore.put_schedule_item(cstore.duty_shift_item(did, self.cid, self.branch, specialty, self.zone,
                                                        now - timedelta(hours=1), now + timedelta(hours=2),
                                                        int(now.timestamp())))
        who = self.patients[patient]
        self.booking.join_queue(who, specialty, bm.UrgentJoin())
        try:
            return self.booking.take_next(Caller(user_id=did, role="doctor", session_id="d", mfa="totp"),
                                          specialty)["booking"]
        except AppError:
            self.booking.leave_queue(who, specialty)
            raise

    def check_no_double_booking(self, d_from: date, d_to: date) -> list[dict]:
        lo, hi = iso(datetime.combine(d_from, time(0), UTC) - timedelta(days=1)), \
            iso(datetime.combine(d_to, time(0), UTC) + timedelta(days=2))
        now = self.clock.now()
        everyone = []
        for did in self.doctors:
            mine = [b for b in bstore.agenda(did, lo, hi) if self.booking._live(b, now)]
            ivs = sorted((inst(b["start_utc"]), inst(b["end_utc"])) for b in mine)
            assert all(a[1] <= b[0] for a, b in zip(ivs, ivs[1:])), f"doctor double-booked: {ivs}"
            everyone += mine
        per_unit: dict[tuple[str, int], list] = {}
        for b in everyone:
            for r in b.get("resources", []):
                per_unit.setdefault((r["resource_id"], int(r["unit"])), []).append(
                    (inst(b["start_utc"]), inst(b["end_utc"])))
        for unit, ivs in per_unit.items():
            ivs.sort()
            assert all(a[1] <= b[0] for a, b in zip(ivs, ivs[1:])), f"resource unit {unit} double-booked: {ivs}"
        per_patient: dict[str, list] = {}
        for b in everyone:
            per_patient.setdefault(b["patient_id"], []).append((inst(b["start_utc"]), inst(b["end_utc"])))
        for pid, ivs in per_patient.items():
            ivs.sort()
            assert all(a[1] <= b[0] for a, b in zip(ivs, ivs[1:])), f"a patient in two places: {ivs}"
        return everyone


    def clean_up(self, d_from: date, d_to: date) -> None:
        """Delete what the example wrote under its doctors (schedule, bookings, locks, resource use).

        Not for isolation (each example has its own branch and doctors) but for speed: moto copies
        the whole table on every transaction, so a table that keeps growing makes each example slower."""
        lo, hi = iso(datetime.combine(d_from, time(0), UTC) - timedelta(days=2)), \
            iso(datetime.combine(d_to, time(0), UTC) + timedelta(days=3))
        keys = set()
        for did in self.doctors:
            keys |= {(i["PK"], i["SK"]) for i in db.query_prefix(cstore.doctor_pk(did), "")}
            for b in bstore.agenda(did, lo, hi):
                keys.add((bstore.booking_pk(b["booking_id"]), "BOOKING"))
                keys |= {(pk, "LOCK") for pk in b.get("locks", [])}
                keys |= {(bstore.resuse_pk(b["branch_id"], r["kind"]), f"{b['start_utc']}#{b['booking_id']}")
                         for r in b.get("resources", [])}
        keys = sorted(keys)
        for i in range(0, len(keys), 25):
            db.ddb().batch_write_item(RequestItems={db.table_name(): [
                {"DeleteRequest": {"Key": db.item_key(pk, sk)}} for pk, sk in keys[i:i + 25]]})


def run_scenario(app: App, sc) -> None:
    clock = app.clock
    clock.set(sc["start"] - timedelta(days=7))  # schedules are written a week ahead
    app.prepare(sc)
    try:
        check_scenario(app, sc)
    finally:
        app.clean_up(sc["d_from"], sc["d_to"])


def check_scenario(app: App, sc) -> None:
    clock = app.clock
    clock.set(sc["start"])
    svc_minutes = {"consult30": 30, "consult45": 45, "scan30": 30}[sc["service"]]
    model = Model(zone=sc["zone"], templates=sc["templates"], leaves=sc["leaves"],
                  duration=timedelta(minutes=svc_minutes), capacity=sc["capacity"], d_from=sc["d_from"],
                  d_to=sc["d_to"])

    def agree(step: str) -> None:
        now = clock.now()
        for d in range(2):
            expected = model.free(d, now)
            got = app.free(d, sc["d_from"], sc["d_to"])
            assert got == expected, (step, d, sorted(set(got) - set(expected)), sorted(set(expected) - set(got)))
        stored = app.check_no_double_booking(sc["d_from"], sc["d_to"])
        assert sorted(b["booking_id"] for b in stored) == sorted(b.booking_id for b in model.live(now)), step

    agree("start")
    for n, op in enumerate(sc["ops"]):
        now = clock.now()
        step = f"{n}:{op}"
        if op[0] == "book":
            _, doctor, patient, pick, from_free = op
            pool = model.free(doctor, now) if from_free else model.candidates(doctor)
            if not pool:
                continue
            slot = pool[pick % len(pool)]
            expect_ok = model.bookable(doctor, slot, now, patient=patient)
            try:
                b = app.book(doctor, patient, slot[0])
            except AppError as exc:
                assert not expect_ok, (step, "refused a free slot", exc.code, exc.detail)
                assert exc.status == 409, (step, exc.code)
            else:
                assert expect_ok, (step, "booked a slot the model says is taken")
                model.bookings.append(Booking(b["booking_id"], doctor, patient, slot[0], slot[1],
                                              model.unit_for(slot, now) if model.capacity else None))
        elif op[0] == "cancel":
            live = model.live(now)
            if not live:
                continue
            b = live[op[1] % len(live)]
            try:
                app.booking.cancel(app.patients[b.patient], b.booking_id, bm.CancelIn())
            except AppError as exc:
                assert now >= b.end, (step, "refused a cancellation", exc.code)
            else:
                assert now < b.end, (step, "cancelled a visit that is over")
                b.live = False
        elif op[0] == "urgent":
            _, doctor, patient = op
            expect_ok = model.can_take(doctor, patient, now)
            try:
                b = app.urgent(doctor, patient)
            except AppError as exc:
                assert not expect_ok, (step, "a free duty doctor could not take a free patient", exc.code)
                assert exc.code in ("doctor_busy", "queue_empty", "not_on_shift"), (step, exc.code)
            else:
                assert expect_ok, (step, "took a patient while the doctor or the patient was in a visit")
                model.bookings.append(Booking(b["booking_id"], doctor, patient, now, now + URGENT, None,
                                              kind="urgent"))
        elif op[0] == "reschedule":
            _, which, pick, from_free = op
            live = [b for b in model.live(now) if b.kind != "urgent"]
            if not live:
                continue
            b = live[which % len(live)]
            pool = model.free(b.doctor, now) if from_free else model.candidates(b.doctor)
            if not pool:
                continue
            slot = pool[pick % len(pool)]
            expect_ok = model.bookable(b.doctor, slot, now, ignore=b.booking_id, patient=b.patient)
            try:
                app.booking.reschedule(app.admin, b.booking_id, bm.RescheduleIn(start=iso(slot[0])))
            except AppError as exc:
                assert not expect_ok, (step, "refused a move to a free slot", exc.code, exc.detail,
                                       iso(b.start), iso(slot[0]))
            else:
                assert expect_ok, (step, "moved onto a taken slot")
                b.unit = model.unit_for(slot, now, ignore=b.booking_id) if model.capacity else None
                b.start, b.end = slot
        else:
            clock.advance(minutes=op[1])
        agree(step)


@pytest.fixture
def w(client, outbox, fixed_clock):
    fixed_clock.set(datetime(2026, 3, 1, 6, tzinfo=UTC))
    w = world(client, outbox, fixed_clock)
    cid, token = w["a"]["clinic_id"], w["admin_a"]["token"]
    base = {**SERVICE, "name": {"ru": "Приём", "en": "Visit"}}
    w["services"] = {
        name: ok(jpost(client, f"/clinics/{cid}/services",
                       {**base, "duration_minutes": minutes, "resource_kinds": kinds}, token=token), 201)["service_id"]
        for name, minutes, kinds in (("consult30", 30, []), ("consult45", 45, []), ("scan30", 30, ["scan"]))}
    return w


def test_free_slots_match_the_model_through_bookings_cancellations_and_reschedules(w, fixed_clock):
    app = App(w, fixed_clock)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(scenarios())
    def prop(sc):
        run_scenario(app, sc)

    prop()
