"""Free slots, bookings that never double-book, holds, reschedule and cancel rules,
waitlist, doctor invitations, telemedicine and the urgent queue.

Invariants live in the database:
- a booking claims every 5-minute block of the doctor's time and of one unit of
  each required resource with ``attribute_not_exists`` puts in ONE transaction;
- every state change is an update conditioned on the current status;
- releasing time deletes exactly the locks the booking holds, in the same
  transaction as its state change.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional

from chalicelib.booking import access, store
from chalicelib.booking import models as m
from chalicelib.booking import slots as sl
from chalicelib.clinics import store as clinic_store
from chalicelib.core import clock, db, log
from chalicelib.core.errors import AppError, conflict, field_invalid, forbidden, not_found
from chalicelib.core.ids import is_ulid, new_id
from chalicelib.core.money import Money
from chalicelib.core.settings import Settings
from chalicelib.core.tz import local_to_utc, present, zone

WAITLIST_HOLD_MINUTES = 15
INVITATION_HOLD_HOURS = 24
VIDEO_OPENS_MINUTES = 10
CHAT_OPEN_AFTER_HOURS = 24
URGENT_CONSULT_MINUTES = 30
LIMIT_CODES = ("visit_limit_per_doctor", "visit_limit_per_day")


def _iso(dt: datetime) -> str:
    return clock.iso(dt)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _around(start: datetime) -> tuple[datetime, datetime]:
    """The schedule that matters for one slot: the days either side of it (any zone)."""
    return start - timedelta(days=1), start + timedelta(days=1)


def _prune(strikes: list[int], now: int, window_days: int) -> list[int]:
    return [s for s in strikes if s > now - window_days * 86400]


class BookingService:
    def __init__(self, settings: Settings, sms: Any, video: Any) -> None:
        self.s = settings
        self.sms = sms
        self.video_rooms = video

    @staticmethod
    def _now() -> datetime:
        return clock.now()

    # ------------------------------------------------------------------ reading what a slot depends on

    def _context(self, clinic_id: str, service_id: str, doctor_id: str, branch_id: Optional[str],
                 patient_id: Optional[str] = None,
                 around: Optional[tuple[datetime, datetime]] = None) -> dict[str, Any]:
        """Everything a slot depends on in two steps: the doctor's schedule for the time ``around`` (the weekly
        templates and the exceptions and duty shifts that overlap it: three bounded queries, history never
        read), then the clinic, service, doctor membership, the branches worked at and the patient's strikes
        (one BatchGetItem)."""
        for name, value in (("clinic_id", clinic_id), ("service_id", service_id), ("doctor_id", doctor_id)):
            if not is_ulid(value):
                raise field_invalid(name, "unknown", f"no such {name[:-3]}")
        now = self._now()
        lo, hi = around or (now, now + timedelta(days=m.MAX_DAYS_AHEAD))
        # free time comes from templates, leave and extra hours; duty shifts serve the urgent queue
        schedule_items = clinic_store.schedule_for(doctor_id, _iso(lo - timedelta(days=2)),
                                                   _iso(hi + timedelta(days=2)), kinds=("EXCEPTION",))
        branch_ids = {i["branch_id"] for i in schedule_items if i.get("clinic_id") == clinic_id and i.get("branch_id")}
        if branch_id:
            branch_ids.add(branch_id)
        keys = clinic_store.slot_context_keys(clinic_id, service_id, doctor_id, sorted(branch_ids))
        counter_keys: list[tuple[str, str]] = []
        if patient_id:
            keys.append(store.strikes_key(patient_id, clinic_id))
            # the patient's visit counters ride in the same BatchGetItem: the doctor's, and the local days the
            # slot may fall on (its UTC date, and the days either side for zones far from UTC)
            counter_keys = [store.doctor_counter_key(patient_id, clinic_id, doctor_id)]
            if around:
                mid = (around[0] + (around[1] - around[0]) / 2).date()
                counter_keys += [store.day_counter_key(patient_id, clinic_id, (mid + timedelta(days=d)).isoformat())
                                 for d in (-1, 0, 1)]
            keys += counter_keys
        found = {(i["PK"], i["SK"]): i for i in db.batch_get(keys)}
        clinic = found.get(keys[0])
        if clinic is None or clinic["status"] != "active":
            raise not_found("clinic_not_found")
        service = found.get(keys[1])
        if service is None or not service.get("active", True):
            raise field_invalid("service_id", "unknown", "no such service in this clinic")
        member = found.get(keys[2])
        if member is None or member.get("status") == clinic_store.REMOVING:
            raise field_invalid("doctor_id", "unknown", "the doctor does not work in this clinic")
        branches = {i["branch_id"]: i for i in found.values() if i.get("type") == "branch"}
        if branch_id and branch_id not in branches:
            raise field_invalid("branch_id", "unknown", "no such branch in this clinic")
        strikes = found.get(store.strikes_key(patient_id, clinic_id), {}) if patient_id else {}
        if service.get("specialty") and service["specialty"] not in member.get("specialties", []):
            raise field_invalid("doctor_id", "doctor_lacks_specialty",
                                f"this service is given by a {service['specialty']}; choose a doctor who is one")
        return {"clinic": clinic, "service": service, "member": member, "branches": branches,
                "schedule": schedule_items, "strikes": strikes.get("strikes", []),
                "counters": {k: found.get(k) for k in counter_keys}}

    def _candidates(self, ctx: dict[str, Any], d_from: date, d_to: date,
                    branch_id: Optional[str]) -> list[tuple[sl.Interval, str, str]]:
        svc = ctx["service"]
        work = sl.working_intervals(ctx["schedule"], ctx["clinic"]["clinic_id"], svc["modality"], branch_id,
                                    d_from - timedelta(days=1), d_to + timedelta(days=1))
        now = self._now()
        earliest = now + timedelta(minutes=int(ctx["clinic"]["policies"].get("minimum_notice_minutes", 60)))
        latest = now + timedelta(days=int(ctx["clinic"]["policies"].get("booking_horizon_days", m.MAX_DAYS_AHEAD)))
        out = []
        for (s, e), bid, tz in sl.candidate_slots(work, timedelta(minutes=int(svc["duration_minutes"]))):
            local_day = s.astimezone(zone(tz)).date()
            if d_from <= local_day <= d_to and earliest <= s and e <= latest:
                out.append(((s, e), bid, tz))
        return out

    @staticmethod
    def _live(b: dict[str, Any], now: datetime) -> bool:
        """Does this booking still occupy time? A lapsed hold does not, even before the job releases it."""
        if b["status"] not in m.ACTIVE:
            return False
        return not (b.get("hold_until") and b["status"] != "confirmed" and _dt(b["hold_until"]) <= now)

    # ------------------------------------------------------------------ free slots

    def free_slots(self, doctor_id: str, q: m.SlotsQuery) -> dict[str, Any]:
        ctx = self._context(q.clinic_id, q.service_id, doctor_id, q.branch_id,
                            around=(_midnight(q.date_from), _midnight(q.date_to + timedelta(days=1))))
        candidates = self._candidates(ctx, q.date_from, q.date_to, q.branch_id)
        answer = {"doctor_id": doctor_id, "service_id": q.service_id,
                  "duration_minutes": ctx["service"]["duration_minutes"], "modality": ctx["service"]["modality"]}
        if not candidates:
            return {"items": [], **answer}
        lo, hi = candidates[0][0][0], candidates[-1][0][1]
        now = self._now()
        busy = [(_dt(b["start_utc"]), _dt(b["end_utc"]))
                for b in store.agenda(doctor_id, _iso(lo - timedelta(hours=4)), _iso(hi)) if self._live(b, now)]
        kinds = ctx["service"].get("resource_kinds", [])
        branches = ctx["branches"] if kinds else {}
        resource_busy: dict[tuple[str, str], dict[tuple[str, int], list[sl.Interval]]] = {}
        for bid in branches:
            for kind in kinds:
                per_unit: dict[tuple[str, int], list[sl.Interval]] = {}
                for u in store.resource_use(bid, kind, _iso(lo - timedelta(hours=4)), _iso(hi)):
                    if u.get("hold_until") and _dt(u["hold_until"]) <= now:
                        continue  # a lapsed hold, not yet released by the job: the time is free
                    per_unit.setdefault((u["resource_id"], int(u["unit"])), []).append(
                        (_dt(u["start_utc"]), _dt(u["end_utc"])))
                resource_busy[(bid, kind)] = per_unit
        items = []
        for (s, e), bid, tz in candidates:
            if any(sl.overlaps((s, e), b) for b in busy):
                continue
            if kinds and not all(sl.free_unit((s, e), self._units(branches.get(bid), k),
                                              resource_busy.get((bid, k), {})) for k in kinds):
                continue
            items.append({"start": _iso(s), "end": _iso(e), "branch_id": bid, "local": present(s, tz)["local"],
                          "time_zone": tz})
        return {"items": items, **answer}

    @staticmethod
    def _units(branch: Optional[dict[str, Any]], kind: str) -> list[tuple[str, int]]:
        if not branch:
            return []
        return [(r["resource_id"], u) for r in branch.get("resources", []) if r["kind"] == kind
                for u in range(int(r.get("capacity", 1)))]

    # ------------------------------------------------------------------ booking

    def _check_slot(self, ctx: dict[str, Any], start: datetime, branch_id: Optional[str]) \
            -> tuple[sl.Interval, str, str]:
        day = start.date()
        for (s, e), bid, tz in self._candidates(ctx, day - timedelta(days=1), day + timedelta(days=1), branch_id):
            if s == start:
                return (s, e), bid, tz
        raise AppError(code="slot_unavailable", status=409,
                       detail="this time is not among the doctor's free slots for the service")

    def _prepayment(self, ctx: dict[str, Any], now: int) -> Optional[dict[str, Any]]:
        svc, clinic = ctx["service"], ctx["clinic"]
        if not clinic.get("payouts", {}).get("charges_enabled"):
            return None  # a clinic that cannot take money online never requires prepayment
        price = svc["price"]
        rule = svc.get("prepayment", {"kind": "none"})
        policies = clinic["policies"]
        strikes = _prune(ctx["strikes"], now, int(policies.get("no_show_window_days", 180)))
        reason = "service"
        if rule.get("kind") == "fixed":
            amount = int(rule["amount"]["amount"])
        elif rule.get("kind") == "percent":
            amount = Money(int(price["amount"]), price["currency"]).percent(int(rule["percent"]) * 100).amount
        elif len(strikes) >= int(policies.get("no_show_limit", 2)):
            amount, reason = int(price["amount"]), "no_show_rule"
        else:
            return None
        return {"amount": amount, "currency": price["currency"], "reason": reason}

    def _new_booking(self, ctx: dict[str, Any], patient_id: str, slot: tuple[sl.Interval, str, str],
                     status: str, hold_until: Optional[datetime], now: datetime,
                     prepayment: Optional[dict[str, Any]], kind: str = "scheduled") -> dict[str, Any]:
        """A new booking item of the shape ``models.Booking`` documents (the one place it is written down)."""
        (s, e), bid, tz = slot
        svc, clinic, doctor_id = ctx["service"], ctx["clinic"], ctx["member"]["doctor_id"]
        booking_id = new_id()
        b = {
            "booking_id": booking_id, "kind": kind, "patient_id": patient_id, "doctor_id": doctor_id,
            "clinic_id": clinic["clinic_id"], "branch_id": bid, "service_id": svc["service_id"],
            "service": {"name": svc["name"], "duration_minutes": svc["duration_minutes"], "price": svc["price"],
                        "modality": svc["modality"], "preparation": svc.get("preparation"),
                        "resource_kinds": svc.get("resource_kinds", [])},
            "doctor_name": " ".join(x for x in (ctx["member"].get("first_name"), ctx["member"].get("last_name")) if x),
            "clinic_name": clinic["display_name"], "time_zone": tz, "start_utc": _iso(s), "end_utc": _iso(e),
            "local_day": s.astimezone(zone(tz)).date().isoformat(),
            "status": status, "created_at": int(now.timestamp()), "version": 1,
            "policy": {"cancellation_window_hours": int(clinic["policies"].get("cancellation_window_hours", 24))},
            "locks": self._person_locks(doctor_id, patient_id, (s, e)), "resources": [],
        }
        if hold_until:
            b["hold_until"] = _iso(hold_until)
        if prepayment:
            b["prepayment"] = {**prepayment, "due_until": b.get("hold_until")}
        return b

    @staticmethod
    def _person_locks(doctor_id: str, patient_id: str, interval: sl.Interval) -> list[str]:
        """The doctor's and the patient's 5-minute blocks of a visit: neither can be in two visits at once."""
        blocks = sl.blocks(interval)
        return [store.doctor_lock(doctor_id, blk) for blk in blocks] + \
            [store.patient_lock(patient_id, blk) for blk in blocks]

    def _claim_resources(self, b: dict[str, Any], ctx: dict[str, Any], avoid: set[tuple[str, int]]) -> None:
        """Pick a unit of each required resource kind (the first not known to be taken) and lock its blocks."""
        kinds = b["service"]["resource_kinds"]
        if not kinds:
            return
        branch = ctx["branches"].get(b["branch_id"])
        interval = (_dt(b["start_utc"]), _dt(b["end_utc"]))
        b["locks"] = [k for k in b["locks"] if k.startswith(("LOCK#D#", "LOCK#P#"))]
        b["resources"] = []
        for kind in kinds:
            units = [u for u in self._units(branch, kind) if u not in avoid]
            if not units:
                raise AppError(code="slot_taken", status=409, detail=f"no {kind} is free at this time")
            rid, unit = units[0]
            b["resources"].append({"kind": kind, "resource_id": rid, "unit": unit})
            b["locks"] += [store.resource_lock(rid, unit, blk) for blk in sl.blocks(interval)]

    def _new_tx(self, b: dict[str, Any], extra: Optional[db.Tx] = None,
                counts: Optional[list[tuple[str, dict[str, Any]]]] = None) -> db.Tx:
        """The booking, its extra items (idempotency record, care, waitlist entry, events), its visit counters
        and its time locks."""
        expires = int(_dt(b["end_utc"]).timestamp()) + 86400
        tx = db.Tx().add("booking", store.new_booking_op(b))
        if extra is not None:
            tx.extend(extra.items())
        tx.extend(counts or [])
        return tx.extend(store.lock_ops(b, expires)).extend(store.resuse_ops(b))

    # ------------------------------------------------------------------ per-patient limits

    def _count_ops(self, b: dict[str, Any], ctx: dict[str, Any], now: datetime,
                   was: Optional[dict[str, Any]] = None) -> list[tuple[str, dict[str, Any]]]:
        """The clinic's limits on one patient's visits, as conditional writes of counter items in the booking's
        transaction: upcoming visits with one doctor (``max_future_visits_per_doctor``) and visits on one local
        day in the clinic (``max_visits_per_day``). Each counter is written only if unchanged since it was read
        (its version), so parallel requests of one patient cannot pass a limit together. Raises a 409 when a
        limit is reached. ``was``: the booking before a reschedule (it no longer counts where it moves from)."""
        policies = ctx["clinic"].get("policies", {})
        pid, cid = b["patient_id"], b["clinic_id"]
        wanted = []
        if policies.get("max_future_visits_per_doctor"):
            wanted.append(("doctor", store.doctor_counter_key(pid, cid, b["doctor_id"]),
                           int(policies["max_future_visits_per_doctor"]), "visit_limit_per_doctor",
                           "upcoming visits with one doctor"))
        if policies.get("max_visits_per_day"):
            wanted.append(("day", store.day_counter_key(pid, cid, b["local_day"]), int(policies["max_visits_per_day"]),
                           "visit_limit_per_day", "visits on one day"))
        ops: list[tuple[str, dict[str, Any]]] = []
        counted: list[list[str]] = []
        for name, key, cap, code, what in wanted:
            if key not in ctx["counters"]:
                ctx["counters"][key] = db.get(*key)  # a day outside the ones read with the context (rare)
            seen = ctx["counters"][key]
            # upcoming visits with a doctor stop counting once over; the visits of one day count all day
            # (a visit that has ended is still one of the day's; a cancelled one is released from the counter)
            visits = {k: v for k, v in (seen or {}).get("visits", {}).items()
                      if (name == "day" or _dt(v) > now) and k != b["booking_id"]}
            if len(visits) >= cap:
                raise AppError(code=code, status=409, detail=f"the clinic allows at most {cap} {what}")
            visits[b["booking_id"]] = b["end_utc"]
            expires = max(int(_dt(v).timestamp()) for v in visits.values()) + 7 * 86400
            ops.append((f"limit:{name}", store.counter_put_op(key, seen, visits, expires)))
            counted.append(list(key))
        if was is not None:  # the counters it leaves (another day, or a limit the clinic dropped meanwhile)
            kept = {tuple(k) for k in counted}
            ops += store.counter_release_ops({**was, "counted_in": [k for k in was.get("counted_in", [])
                                                                      if tuple(k) not in kept]})
        b["counted_in"] = counted
        return ops

    def _reread_counters(self, ctx: dict[str, Any]) -> None:
        keys = list(ctx["counters"])
        found = {(i["PK"], i["SK"]): i for i in db.batch_get(keys)} if keys else {}
        ctx["counters"] = {k: found.get(k) for k in keys}

    @staticmethod
    def _time_taken(exc: db.TxCancelled) -> AppError:
        if exc.any("lock:LOCK#D#", "lock:LOCK#R#"):
            return AppError(code="slot_taken", status=409, detail="someone booked this time a moment ago")
        return AppError(code="patient_busy", status=409,
                        detail="the patient already has a visit at this time (with any doctor, in any clinic)")

    def _claim(self, b: dict[str, Any], ctx: dict[str, Any], extra: Optional[db.Tx] = None,
               counted: bool = False) -> None:
        """Write a new booking with its time locks (the doctor's, the patient's, a resource unit's) and, when
        ``counted``, the patient's visit counters; on a lock held by a lapsed hold, release it and retry; on a
        resource unit taken meanwhile, try the next unit; on a counter changed meanwhile, read it again and
        retry. A failed extra item raises ``TxCancelled``."""
        avoid: set[tuple[str, int]] = set()
        self._claim_resources(b, ctx, avoid)
        attempt = races = 0
        while True:
            counts = self._count_ops(b, ctx, self._now()) if counted else []
            tx = self._new_tx(b, extra, counts)
            try:
                tx.commit()
                return
            except db.TxTooLarge:
                raise AppError(code="visit_too_long", status=422,
                               detail="this visit needs more time blocks than one booking can claim; "
                                      "ask the clinic to split the service") from None
            except db.TxCancelled as exc:
                if exc.only("limit:") and races < 10:
                    races += 1
                    self._reread_counters(ctx)  # another booking of this patient counted meanwhile
                    continue
                if not exc.only("lock:", "limit:"):
                    raise
                if attempt < 3 and self._release_lapsed(b):
                    attempt += 1
                    continue
                taken = {(r["resource_id"], r["unit"]) for r in b["resources"]
                         if exc.any(f"lock:LOCK#R#{r['resource_id']}#{r['unit']}#")}
                if exc.any("lock:LOCK#D#", "lock:LOCK#P#") or not taken or attempt >= 3:
                    raise self._time_taken(exc) from None
                attempt += 1
                avoid |= taken
                self._claim_resources(b, ctx, avoid)

    def _release_lapsed(self, b: dict[str, Any]) -> bool:
        """Expire lapsed holds on this doctor's time around ``b``; True if any was released. The time goes to
        the patient booking it now, so these expiries offer nothing to the waitlist."""
        now = self._now()
        released = False
        lo = _iso(_dt(b["start_utc"]) - timedelta(hours=4))
        others = store.agenda(b["doctor_id"], lo, b["end_utc"]) + \
            store.patient_visits(b["patient_id"], lo, b["end_utc"])
        for other in others:
            if other["status"] in ("held", "offered", "proposed") and other.get("hold_until") \
                    and _dt(other["hold_until"]) <= now:
                released = self.expire(other, offer_freed_time=False) or released
        return released

    def book(self, caller: Any, req: m.BookingIn, idempotency_key: Optional[str]) -> tuple[dict[str, Any], bool]:
        """A new booking (and True), or the one an earlier identical request created (and False)."""
        access.require_patient(caller)
        now = self._now()
        request_hash = hashlib.sha256(json.dumps(req.model_dump(), sort_keys=True).encode()).hexdigest()
        ctx = self._context(req.clinic_id, req.service_id, req.doctor_id, req.branch_id, caller.user_id,
                            around=_around(m.parse_instant(req.start)))
        try:
            slot = self._check_slot(ctx, m.parse_instant(req.start), req.branch_id)
        except AppError as exc:
            # a retry of a booking that was made: the answer is the booking, even if the slot's notice passed
            if idempotency_key and exc.code == "slot_unavailable" and store.get_idem(caller.user_id, idempotency_key):
                return self._replay(caller, idempotency_key, request_hash), False
            raise
        prepayment = self._prepayment(ctx, int(now.timestamp()))
        hold_until = None
        if prepayment:
            hold_until = min(now + timedelta(minutes=int(ctx["clinic"]["policies"].get("hold_minutes", 30))),
                             slot[0][0])
        b = self._new_booking(ctx, caller.user_id, slot, "held" if prepayment else "confirmed", hold_until, now,
                              prepayment)
        extra = db.Tx()
        if idempotency_key:
            extra.add("idem", store.idem_op(caller.user_id, idempotency_key, request_hash, b["booking_id"],
                                            int(now.timestamp())))
        if not prepayment:
            extra.add("care", store.care_op(req.doctor_id, caller.user_id, int(now.timestamp())))
        extra.event("booking.created", self._snapshot(b))
        try:
            self._claim(b, ctx, extra, counted=True)
        except AppError as exc:
            # a retry of a booking that was made: its own visit fills the limit, the answer is that booking
            if idempotency_key and exc.code in LIMIT_CODES and store.get_idem(caller.user_id, idempotency_key):
                return self._replay(caller, idempotency_key, request_hash), False
            raise
        except db.TxCancelled as exc:
            if not exc.any("idem"):
                raise
            assert idempotency_key
            return self._replay(caller, idempotency_key, request_hash), False
        log.event("booking.created", booking_id=b["booking_id"], status=b["status"], clinic_id=b["clinic_id"])
        return self.view(b, caller), True

    @staticmethod
    def _snapshot(b: dict[str, Any]) -> dict[str, Any]:
        """What an event says about a booking: who, where and when (never a complaint or a note)."""
        return {k: b[k] for k in ("booking_id", "kind", "status", "patient_id", "doctor_id", "clinic_id", "branch_id",
                                  "service_id", "start_utc", "end_utc", "time_zone") if k in b}

    def _replay(self, caller: Any, key: str, request_hash: str) -> dict[str, Any]:
        record = store.get_idem(caller.user_id, key)
        if record is None:
            raise conflict("slot_taken")
        if record["request_hash"] != request_hash:
            raise AppError(code="idempotency_key_reused", status=422,
                           detail="this Idempotency-Key was used for a different booking request")
        existing = store.get_booking(record["booking_id"])
        if existing is None:
            raise conflict("slot_taken")
        return self.view(existing, caller)

    # ------------------------------------------------------------------ who may see and change a booking

    def _load(self, caller: Any, bid: str, as_clinic: bool = True) -> tuple[dict[str, Any], str]:
        """The booking and the caller's relation to it (``booking.access``): 404 for anyone else."""
        b = store.get_booking(bid) if is_ulid(bid) else None
        if b is None:
            raise not_found()
        return b, access.relation(caller, b, as_clinic)

    def view(self, b: dict[str, Any], caller: Any = None) -> dict[str, Any]:
        start, end = _dt(b["start_utc"]), _dt(b["end_utc"])
        shown = ("booking_id", "kind", "status", "patient_id", "doctor_id", "doctor_name", "clinic_id", "clinic_name",
                 "branch_id", "service_id", "service", "time_zone", "version")
        out: dict[str, Any] = {k: b[k] for k in shown if k in b}
        out["start"] = present(start, b["time_zone"])
        out["end"] = present(end, b["time_zone"])
        if b.get("hold_until"):
            out["hold_until"] = b["hold_until"]
        if b.get("prepayment"):
            out["prepayment"] = b["prepayment"]
        if b.get("cancellation"):
            out["cancellation"] = b["cancellation"]
        if b.get("note"):
            out["note"] = b["note"]
        window = int(b.get("policy", {}).get("cancellation_window_hours", 24))
        out["free_cancellation_until"] = _iso(start - timedelta(hours=window))
        return out

    def get(self, caller: Any, bid: str) -> dict[str, Any]:
        b, _ = self._load(caller, bid)
        return self.view(b, caller)

    # ------------------------------------------------------------------ state changes

    def _change(self, b: dict[str, Any], allowed: tuple[str, ...], changes: dict[str, Any], release: bool,
                event: str, event_data: Optional[dict[str, Any]] = None, extra: Optional[db.Tx] = None,
                extra_condition: str = "", extra_values: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """One conditional state change, its released time and its event, in one transaction."""
        tx = db.Tx().add("booking", store.transition_op(b, allowed, changes, remove=("GSI2PK", "GSI2SK"),
                                                        extra_condition=extra_condition, extra_values=extra_values))
        if release:
            tx.extend(store.unlock_ops(b)).extend(store.unresuse_ops(b)).extend(store.counter_release_ops(b))
        if extra is not None:
            tx.extend(extra.items())
        tx.event(event, {**self._snapshot(b), **(event_data or {}), "status": changes.get("status", b["status"])})
        try:
            tx.commit()
        except db.TxCancelled:
            current = store.get_booking(b["booking_id"])
            raise conflict("wrong_status", f"the booking is {current['status'] if current else 'gone'}") from None
        b = {**b, **changes, "version": b["version"] + 1}
        b.pop("GSI2PK", None)
        return b

    def cancel(self, caller: Any, bid: str, req: m.CancelIn) -> dict[str, Any]:
        b, relation = self._load(caller, bid)
        now = self._now()
        if relation == "doctor":
            raise forbidden("role_not_allowed", "the clinic cancels on a doctor's behalf")
        if relation == "clinic":
            if not req.reason:
                raise field_invalid("reason", "required", "say why the clinic cancels")
            status, late = "cancelled_by_clinic", False
        else:
            status = "cancelled_by_patient"
            window = int(b.get("policy", {}).get("cancellation_window_hours", 24))
            # an urgent consultation starts when the doctor takes the patient: leaving it is no late cancellation
            late = b["status"] == "confirmed" and b.get("kind") != "urgent" \
                and now > _dt(b["start_utc"]) - timedelta(hours=window)
        if now >= _dt(b["end_utc"]):
            raise conflict("wrong_status", "the visit is over")
        extra = db.Tx()
        if late:
            extra.add("strike", store.add_strike_op(b["patient_id"], b["clinic_id"], int(now.timestamp())))
        # a visit the clinic cancels (its doctor's leave, a removal, any reason) is refunded in full: payments
        # do not exist yet, so the intent rides in the cancellation and its event for the payments feature
        refund = {"refund": "full"} if relation == "clinic" else {}
        b = self._change(b, ("offered", "proposed", "held", "confirmed"), {
            "status": status, "cancellation": {"by": relation, "at": _iso(now), "late": late, **refund,
                                               **({"reason": req.reason} if req.reason else {})}},
            release=True, event="booking.cancelled",
            event_data={"by": relation, "late": late, "offer": True, "waitlist_entry": b.get("waitlist_entry"),
                        **refund},
            extra=extra)
        log.event("booking.cancelled", booking_id=bid, by=relation, late=late)
        return self.view(b, caller)

    def confirm_payment(self, caller: Any, bid: str) -> dict[str, Any]:
        """A held booking's prepayment arrived (at the reception desk, or online in the payments issue)."""
        b, relation = self._load(caller, bid)
        if relation != "clinic":
            raise forbidden("role_not_allowed", "the clinic records payments")
        now = self._now()
        extra = db.Tx().add("care", store.care_op(b["doctor_id"], b["patient_id"], int(now.timestamp())))
        extra.extend(store.resuse_hold_ops(b, None))
        b = self._change(b, ("held",), {"status": "confirmed", "paid_at": _iso(now)}, release=False,
                         event="booking.paid", extra=extra)
        return self.view(b, caller)

    def confirm_paid_ops(self, tx: db.Tx, b: dict[str, Any], now: datetime, payment_id: str) -> db.Tx:
        """The same confirmation as ``confirm_payment``, for a system caller (the payments feature, on the
        provider's word or a desk payment), as items of the caller's transaction."""
        tx.add("booking", store.transition_op(b, ("held",), {"status": "confirmed", "paid_at": _iso(now)},
                                              remove=("GSI2PK", "GSI2SK")))
        tx.add("care", store.care_op(b["doctor_id"], b["patient_id"], int(now.timestamp())))
        tx.extend(store.resuse_hold_ops(b, None))
        tx.event("booking.paid", {**self._snapshot(b), "status": "confirmed", "payment_id": payment_id})
        return tx

    def _mark_visit(self, caller: Any, bid: str, status: str) -> dict[str, Any]:
        b, relation = self._load(caller, bid, as_clinic=False)
        if relation != "doctor":
            raise forbidden("role_not_allowed", "the visit's doctor marks it")
        now = self._now()
        if now < _dt(b["start_utc"]):
            raise conflict("too_early", "a visit is marked once it has started")
        extra = db.Tx()
        if status == "no_show":
            extra.add("strike", store.add_strike_op(b["patient_id"], b["clinic_id"], int(now.timestamp())))
        changes: dict[str, Any] = {"status": status, "marked_at": _iso(now)}
        early = b.get("kind") == "urgent" and status == "completed" and now < _dt(b["end_utc"])
        if early:  # an urgent consultation over early gives the doctor's time back for the next patient
            changes["end_utc"] = _iso(now)
        b = self._change(b, ("confirmed",), changes, release=early, event=f"booking.{status}", extra=extra)
        log.event("booking.marked", booking_id=bid, status=status)
        return self.view(b, caller)

    def complete(self, caller: Any, bid: str) -> dict[str, Any]:
        return self._mark_visit(caller, bid, "completed")

    def no_show(self, caller: Any, bid: str) -> dict[str, Any]:
        return self._mark_visit(caller, bid, "no_show")

    def reschedule(self, caller: Any, bid: str, req: m.RescheduleIn) -> dict[str, Any]:
        b, relation = self._load(caller, bid)
        if relation == "doctor":
            raise forbidden("role_not_allowed", "the patient or the clinic moves a visit")
        now = self._now()
        if b["status"] not in ("held", "confirmed"):
            raise conflict("wrong_status", f"the booking is {b['status']}")
        if req.version is not None and req.version != b["version"]:
            raise conflict("version_conflict")
        window = int(b.get("policy", {}).get("cancellation_window_hours", 24))
        if relation == "patient" and now > _dt(b["start_utc"]) - timedelta(hours=window):
            raise conflict("too_late_to_reschedule", f"within {window} h of the visit, call the clinic or cancel")
        ctx = self._context(b["clinic_id"], b["service_id"], b["doctor_id"], b["branch_id"], b["patient_id"],
                            around=_around(m.parse_instant(req.start)))
        slot = self._check_slot(ctx, m.parse_instant(req.start), b["branch_id"])
        if _iso(slot[0][0]) == b["start_utc"]:
            return self.view(b, caller)  # already at that time: nothing to move
        moved = self._new_booking(ctx, b["patient_id"], slot, b["status"], None, now, None)
        moved.update(booking_id=b["booking_id"])
        if b.get("hold_until"):
            moved["hold_until"] = b["hold_until"]  # a held visit keeps its hold: its new room use lapses with it
        moved["locks"] = self._person_locks(b["doctor_id"], b["patient_id"], slot[0])
        avoid: set[tuple[str, int]] = set()
        races = 0
        attempt = 0
        while attempt < 4:
            self._claim_resources(moved, ctx, avoid)
            counts = self._count_ops(moved, ctx, now, was=b)
            changes = self._moved_changes(b, moved, now)
            try:
                self._move_tx(b, moved, changes, counts).commit()
                break
            except db.TxTooLarge:
                raise AppError(code="visit_too_long", status=422,
                               detail="this visit needs more time blocks than one booking can claim") from None
            except db.TxCancelled as exc:
                if exc.any("booking"):
                    raise conflict("version_conflict", "the booking changed meanwhile; reload it") from None
                if exc.only("limit:") and races < 10:
                    races += 1
                    self._reread_counters(ctx)
                    continue
                taken = {(r["resource_id"], r["unit"]) for r in moved["resources"]
                         if exc.any(f"lock:LOCK#R#{r['resource_id']}#{r['unit']}#")}
                if exc.any("lock:LOCK#D#", "lock:LOCK#P#") or not taken or attempt == 3:
                    raise self._time_taken(exc) from None
                attempt += 1
                avoid |= taken  # another unit of the same kind may be free: try it, as booking does
        b = {**b, **changes, "version": b["version"] + 1}
        log.event("booking.rescheduled", booking_id=bid)
        return self.view(b, caller)

    def reassign(self, caller: Any, bid: str, req: m.ReassignIn) -> dict[str, Any]:
        """The clinic moves a visit to another of its doctors at the same time (a leave or a removal hit it):
        one transaction takes the new doctor's blocks (``attribute_not_exists``) and gives the old doctor's
        back; the patient's time and the rooms stay as they are."""
        b, relation = self._load(caller, bid)
        if relation != "clinic":
            raise forbidden("role_not_allowed", "the clinic moves a visit to another doctor")
        if b["status"] not in ("held", "confirmed") or b.get("kind") == "urgent":
            raise conflict("wrong_status", f"the booking is {b['status']}")
        if req.version is not None and req.version != b["version"]:
            raise conflict("version_conflict")
        if req.doctor_id == b["doctor_id"]:
            return self.view(b, caller)
        start, end = _dt(b["start_utc"]), _dt(b["end_utc"])
        now = self._now()
        if end <= now:
            raise conflict("wrong_status", "the visit is over")
        ctx = self._context(b["clinic_id"], b["service_id"], req.doctor_id, b["branch_id"], b["patient_id"],
                            around=_around(start))
        day = start.date()
        work = sl.working_intervals(ctx["schedule"], b["clinic_id"], b["service"]["modality"], b["branch_id"],
                                    day - timedelta(days=2), day + timedelta(days=2))
        if not any(s <= start and end <= e for (s, e), _, _ in work):
            raise AppError(code="slot_unavailable", status=409, detail="that doctor does not work at this time")
        old_doctor = [k for k in b["locks"] if k.startswith(f"LOCK#D#{b['doctor_id']}#")]
        new_doctor = [store.doctor_lock(req.doctor_id, blk) for blk in sl.blocks((start, end))]
        locks = new_doctor + [k for k in b["locks"] if k not in old_doctor]
        member = ctx["member"]
        moved = {**b, "doctor_id": req.doctor_id, "locks": locks}
        # the clinic's per-patient limits hold for the new doctor too (409 visit_limit_per_doctor); the counters
        # the visit leaves (the old doctor's) are released in the same transaction
        counts = self._count_ops(moved, ctx, now, was=b)
        changes: dict[str, Any] = {
            "doctor_id": req.doctor_id, "locks": locks, "reassigned_at": _iso(now),
            "doctor_name": " ".join(x for x in (member.get("first_name"), member.get("last_name")) if x),
            "counted_in": moved["counted_in"],
            **{k: v for k, v in store.index_keys(moved).items() if k in ("GSI3PK", "GSI3SK")}}
        tx = db.Tx().add("booking", store.transition_op(b, ("held", "confirmed"), changes,
                                                        extra_condition="#v = :seen",
                                                        extra_values={"seen": b["version"]}))
        tx.extend(store.lock_ops({**moved, "locks": new_doctor}, int(end.timestamp()) + 86400))
        tx.extend(store.unlock_ops({**b, "locks": old_doctor}))
        tx.extend(counts)
        tx.event("booking.reassigned", {**self._snapshot(b), "doctor_id": req.doctor_id,
                                        "from_doctor_id": b["doctor_id"]})
        try:
            tx.commit()
        except db.TxTooLarge:
            raise AppError(code="visit_too_long", status=422,
                           detail="this visit needs more time blocks than one move can claim") from None
        except db.TxCancelled as exc:
            if exc.any("booking", "limit:"):
                raise conflict("version_conflict", "the booking changed meanwhile; reload it") from None
            raise AppError(code="slot_taken", status=409, detail="that doctor is busy at this time") from None
        log.event("booking.reassigned", booking_id=bid)
        return self.view({**b, **changes, "version": b["version"] + 1}, caller)

    @staticmethod
    def _moved_changes(b: dict[str, Any], moved: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {"start_utc": moved["start_utc"], "end_utc": moved["end_utc"], "locks": moved["locks"],
                "counted_in": moved.get("counted_in", []),
                "resources": moved["resources"], "resource_ids": store.resource_ids(moved),
                "rescheduled_at": _iso(now), "local_day": moved["local_day"],
                **{k: v for k, v in store.index_keys({**b, **moved, "status": b["status"]}).items()
                   if k in ("GSI1SK", "GSI3SK", "GSI4SK")}}

    def _move_tx(self, b: dict[str, Any], moved: dict[str, Any], changes: dict[str, Any],
                 counts: Optional[list[tuple[str, dict[str, Any]]]] = None) -> db.Tx:
        """The booking's move in one transaction: its change, the new time's locks and resource uses, the old
        ones released. A long visit with resources may not fit in 100 items: then the old time's locks that
        do not fit are named in the event and released by its consumer (only while this booking still owns
        them and no longer needs them)."""
        old_locks, new_locks = set(b["locks"]), set(moved["locks"])
        expires = int(_dt(moved["end_utc"]).timestamp()) + 86400
        tx = db.Tx().add("booking", store.transition_op(b, ("held", "confirmed"), changes,
                                                        extra_condition="#v = :seen",
                                                        extra_values={"seen": b["version"]}))
        tx.extend(counts or [])
        tx.extend(store.lock_ops({**moved, "locks": sorted(new_locks - old_locks)}, expires))
        tx.extend(store.unresuse_ops(b)).extend(store.resuse_ops(moved))
        release = store.unlock_ops(b, keep=frozenset(new_locks))
        room = max(db.Tx.MAX_ITEMS - len(tx) - 1, 0)
        leftover = [name.removeprefix("unlock:") for name, _ in release[room:]]
        tx.extend(release[:room])
        tx.event("booking.rescheduled", {**self._snapshot(b), "offer": True, "leftover_locks": leftover,
                                         "new_start_utc": moved["start_utc"]})
        return tx

    def expire(self, b: dict[str, Any], offer_freed_time: bool = True) -> bool:
        """Release a lapsed hold (prepayment not made, offer or invitation not answered)."""
        now = self._now()
        try:
            self._change(b, ("held", "offered", "proposed"), {"status": "expired", "expired_at": _iso(now)},
                         release=True, event="booking.expired",
                         event_data={"offer": offer_freed_time, "waitlist_entry": b.get("waitlist_entry")},
                         extra_condition="hold_until <= :now", extra_values={"now": _iso(now)})
        except AppError:
            return False
        log.event("booking.expired", booking_id=b["booking_id"], was=b["status"])
        return True

    def expire_due_holds(self, limit: int = 100) -> int:
        """The scheduled job: read only the holds that are due (a sparse index) and release them, a batch at a
        time until none is due (or ``limit`` batches: the next run takes the rest)."""
        released = 0
        for _ in range(limit):
            batch = store.due_holds(store.now_iso(), 100)
            done = sum(1 for b in batch if self.expire(b))
            released += done
            if len(batch) < 100 or not done:
                break
        return released

    # ------------------------------------------------------------------ lists and calendars

    def my_bookings(self, caller: Any, q: m.ListQuery) -> dict[str, Any]:
        access.require_patient(caller)
        now = store.now_iso()
        if q.when == "upcoming":
            cond = "GSI1PK = :pk AND GSI1SK >= :now"
        else:
            cond = "GSI1PK = :pk AND GSI1SK BETWEEN :lo AND :now"
        vals = db.values(pk=db.key("PATIENT", caller.user_id), now=now, **({"lo": "2"} if q.when == "past" else {}))
        items, cursor = db.page(cond, vals, q.limit, q.cursor, index="GSI1", forward=q.when == "upcoming")
        return {"items": [self.view(b) for b in items if b.get("type") == "booking"], "next_cursor": cursor}

    @staticmethod
    def _local_range(d_from: date, d_to: date, tz: Optional[str]) -> tuple[str, str, Optional[str], dict[str, Any]]:
        """The UTC key range that holds local days [d_from, d_to], and the filter that keeps exactly them.

        With a zone, the range is exact: from local midnight of ``d_from`` to local midnight after ``d_to``.
        Without one, every visit counts on the local day of its own clinic (a doctor working in
        Kaliningrad and Sakhalin sees each visit on the day it is there): the key range spans every zone
        on Earth (UTC-12 to UTC+14) and the stored local day of each booking filters it."""
        if tz:
            lo = local_to_utc(d_from, time(0), tz)
            hi = local_to_utc(d_to + timedelta(days=1), time(0), tz)
            return _iso(lo), _iso(hi - timedelta(seconds=1)), None, {}
        lo_utc = datetime(d_from.year, d_from.month, d_from.day) - timedelta(hours=14)
        hi_utc = datetime(d_to.year, d_to.month, d_to.day) + timedelta(days=1, hours=12)
        return (lo_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), hi_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "local_day BETWEEN :dfrom AND :dto", {"dfrom": d_from.isoformat(), "dto": d_to.isoformat()})

    def agenda(self, caller: Any, q: m.AgendaQuery) -> dict[str, Any]:
        """The doctor's visits of local days across clinics, earliest first, a page at a time."""
        access.require_doctor(caller)
        lo, hi, flt, fvals = self._local_range(q.date_from, q.date_to, q.time_zone)
        statuses = m.ACTIVE + ("completed", "no_show")
        status_keys = {f"st{i}": s for i, s in enumerate(statuses)}
        cond = f"#st IN ({', '.join(':' + k for k in status_keys)})" + (f" AND {flt}" if flt else "")
        items, cursor = db.page("GSI3PK = :pk AND GSI3SK BETWEEN :a AND :b",
                                db.values(pk=db.key("AGENDA", caller.user_id), a=lo, b=hi + "~", **fvals,
                                          **status_keys),
                                q.limit, q.cursor, index="GSI3", names={"#st": "status"}, filter_expression=cond)
        active = access.active_clinics_of_doctor(caller.user_id)  # a clinic that removed them shows nothing
        return {"items": [self.view(b) for b in items if b["clinic_id"] in active], "next_cursor": cursor}

    def clinic_calendar(self, caller: Any, cid: str, q: m.RangeQuery) -> dict[str, Any]:
        """The clinic's bookings of local days (each in its branch's zone, or in ``time_zone``)."""
        access.require_clinic_admin(caller, cid)
        lo, hi, flt, fvals = self._local_range(q.date_from, q.date_to, q.time_zone)
        parts = [flt] if flt else []
        if q.doctor_id:
            parts.append("doctor_id = :doc")
            fvals["doc"] = q.doctor_id
        if q.resource_id:
            parts.append("contains(resource_ids, :res)")
            fvals["res"] = q.resource_id
        items, cursor = db.page("GSI4PK = :pk AND GSI4SK BETWEEN :a AND :b",
                                db.values(pk=db.key("CAL", cid), a=lo, b=hi + "~", **fvals), q.limit, q.cursor,
                                index="GSI4", filter_expression=" AND ".join(parts) or None)
        return {"items": [self.view(b) for b in items], "next_cursor": cursor}

    def ics(self, caller: Any, bid: str) -> str:
        b, _ = self._load(caller, bid)
        return to_ics([b], f"{b['booking_id']}")

    def feed_token(self, caller: Any) -> dict[str, Any]:
        access.require_doctor(caller)
        from chalicelib.core.crypto import keyed_hash

        token = f"{caller.user_id}.{keyed_hash('calendar-feed', caller.user_id)[:32]}"
        return {"url": f"{self.s.public_base_url.rstrip('/')}/calendar/{token}.ics"}

    def feed(self, token: str) -> str:
        from chalicelib.core.crypto import keyed_hashes, same

        did, _, mac = token.removesuffix(".ics").partition(".")
        # A feed URL keeps working through one rotation of the calendar-feed key (docs/security.md).
        if not is_ulid(did) or not any(same(mac, h[:32]) for h in keyed_hashes("calendar-feed", did)):
            raise not_found()
        now = self._now()
        items = store.agenda(did, _iso(now - timedelta(days=7)), _iso(now + timedelta(days=m.MAX_HORIZON_DAYS)))
        active = access.active_clinics_of_doctor(did)  # a clinic that removed the doctor leaves the feed at once
        return to_ics([b for b in items if b["status"] in ("held", "confirmed", "completed")
                       and b["clinic_id"] in active], f"feed-{did}", private=True)

    # ------------------------------------------------------------------ waitlist

    def join_waitlist(self, caller: Any, req: m.WaitlistIn) -> dict[str, Any]:
        access.require_patient(caller)
        ctx = self._context(req.clinic_id, req.service_id, req.doctor_id, None,
                            around=(_midnight(req.date_from), _midnight(req.date_to + timedelta(days=1))))
        now = self._now()
        zones = {b["time_zone"] for b in ctx["branches"].values()} or {"UTC"}
        if req.date_to < min(now.astimezone(zone(z)).date() for z in zones):
            raise field_invalid("date_to", "in_the_past", "these days are over; wait for days to come")
        item = store.waitlist_item({
            "waitlist_id": new_id(), "patient_id": caller.user_id, "doctor_id": req.doctor_id,
            "clinic_id": req.clinic_id, "service_id": req.service_id, "date_from": req.date_from.isoformat(),
            "date_to": req.date_to.isoformat(), "created_at": _iso(now)})
        db.put_new(item)
        return self._wait_view(item)

    @staticmethod
    def _wait_view(w: dict[str, Any]) -> dict[str, Any]:
        return {k: w[k] for k in ("waitlist_id", "doctor_id", "clinic_id", "service_id", "date_from", "date_to",
                                  "status", "created_at") if k in w}

    def my_waitlist(self, caller: Any, q: m.Page) -> dict[str, Any]:
        access.require_patient(caller)
        items, cursor = store.patient_waitlist_page(caller.user_id, q.limit, q.cursor)
        return {"items": [self._wait_view(w) for w in items], "next_cursor": cursor}

    def leave_waitlist(self, caller: Any, wid: str) -> None:
        access.require_patient(caller)
        entry = store.patient_waitlist_entry(caller.user_id, wid) if is_ulid(wid) else None
        if entry is None or not store.delete_waitlist_entry(entry):
            raise not_found()

    def offer_freed(self, freed: dict[str, Any]) -> Optional[str]:
        """Offer freed time to the first waiting patient it suits, with a 15-minute hold. Runs as a consumer
        of the event that freed the time; the offer, the entry's change and the offer's own event are one
        transaction, so a retried event never offers the same time twice (the time is then locked)."""
        start = _dt(freed["start_utc"])
        now = self._now()
        if start <= now + timedelta(minutes=WAITLIST_HOLD_MINUTES):
            return None
        local_day = start.astimezone(zone(freed["time_zone"])).date().isoformat()
        ctx: Optional[dict[str, Any]] = None
        for w in store.open_waitlist(freed["doctor_id"], local_day):
            if w["service_id"] != freed["service_id"] or w["clinic_id"] != freed["clinic_id"] \
                    or freed["start_utc"] in w.get("offered_starts", []) or w["date_from"] > local_day \
                    or w["patient_id"] == freed["patient_id"]:
                continue
            if ctx is None:
                try:
                    ctx = self._context(freed["clinic_id"], freed["service_id"], freed["doctor_id"],
                                        freed["branch_id"], around=_around(start))
                except AppError:
                    return None  # the clinic, service or doctor is gone: nothing to offer
            slot = ((start, _dt(freed["end_utc"])), freed["branch_id"], freed["time_zone"])
            hold = min(now + timedelta(minutes=WAITLIST_HOLD_MINUTES), start)
            offer = self._new_booking(ctx, w["patient_id"], slot, "offered", hold, now,
                                      self._prepayment({**ctx, "strikes": []}, int(now.timestamp())), kind="waitlist")
            offer["waitlist_entry"] = {"PK": w["PK"], "SK": w["SK"]}
            extra = db.Tx().add("waitlist", store.offer_waitlist_op(w, freed["start_utc"]))
            extra.event("waitlist.offered", self._snapshot(offer))
            try:
                # an offer holds the patient's time: it counts toward the clinic's limits like a booking
                self._claim(offer, ctx, extra, counted=True)
            except AppError as exc:
                if exc.code == "patient_busy" or exc.code in LIMIT_CODES:
                    continue  # this patient has another visit then, or the clinic's limit: the next one
                return None  # someone took the time meanwhile: the patient who clicked wins
            except db.TxCancelled:
                continue  # this entry changed meanwhile: try the next patient
            log.event("waitlist.offered", booking_id=offer["booking_id"], waitlist_id=w["waitlist_id"])
            return str(offer["booking_id"])
        return None

    def settle_waitlist(self, entry_key: Optional[dict[str, str]], outcome: str) -> bool:
        """After an offer was answered or lapsed: close the entry ('booked') or let it wait again."""
        return bool(entry_key) and store.settle_waitlist(entry_key, outcome)  # type: ignore[arg-type]

    def release_leftover_locks(self, booking_id: str, locks: list[str]) -> int:
        """Locks of a rescheduled visit's old time that did not fit its transaction (a long visit)."""
        if not locks:
            return 0
        current = store.get_booking(booking_id)
        keep = frozenset(current["locks"]) if current and current["status"] in m.ACTIVE else frozenset()
        return store.release_locks(booking_id, locks, keep)

    def doctor_left_clinic(self, clinic_id: str, doctor_id: str, decision: str) -> int:
        """A doctor's removal from a clinic began (event ``clinic.doctor_removed``). With ``cancel`` every
        future visit of theirs in that clinic is cancelled by the clinic (each with its own event, so the
        patient is told and the time offered on); with ``keep_for_reassignment`` the visits stay for the
        clinic to move. Idempotent: a visit already cancelled is skipped."""
        if decision != "cancel":
            return 0
        now = self._now()
        cancelled = 0
        for b in store.clinic_bookings_of_doctor(clinic_id, doctor_id, _iso(now),
                                                 _iso(now + timedelta(days=m.MAX_HORIZON_DAYS + 1))):
            if b["status"] not in m.ACTIVE or _dt(b["end_utc"]) <= now:
                continue
            try:
                self._change(b, m.ACTIVE, {"status": "cancelled_by_clinic", "cancellation": {
                    "by": "clinic", "at": _iso(now), "late": False, "reason": "doctor_left_clinic", "refund": "full"}},
                    release=True, event="booking.cancelled",
                    event_data={"by": "clinic", "late": False, "offer": False, "tell_patient": True, "refund": "full"})
                cancelled += 1
            except AppError:
                continue  # changed meanwhile (the patient cancelled, or it is over)
        return cancelled

    # ------------------------------------------------------------------ accepting offers and invitations

    def accept(self, caller: Any, bid: str) -> dict[str, Any]:
        b, relation = self._load(caller, bid, as_clinic=False)
        if relation != "patient":
            raise forbidden("role_not_allowed")
        now = self._now()
        if b["status"] not in ("offered", "proposed") or not self._live(b, now):
            raise conflict("wrong_status", "this offer is no longer open")
        remove: tuple[str, ...] = ()
        extra = db.Tx()
        if b.get("prepayment"):
            clinic = clinic_store.get_clinic(b["clinic_id"]) or {"policies": {}}
            hold = min(now + timedelta(minutes=int(clinic["policies"].get("hold_minutes", 30))), _dt(b["start_utc"]))
            changes: dict[str, Any] = {"status": "held", "hold_until": _iso(hold),
                                       "prepayment": {**b["prepayment"], "due_until": _iso(hold)},
                                       "GSI2PK": store.hold_index(b["booking_id"]),
                                       "GSI2SK": f"{_iso(hold)}#{b['booking_id']}"}
        else:
            changes = {"status": "confirmed"}
            remove = ("GSI2PK", "GSI2SK", "hold_until")
            extra.add("care", store.care_op(b["doctor_id"], b["patient_id"], int(now.timestamp())))
        tx = db.Tx().add("booking", store.transition_op(b, ("offered", "proposed"), changes, remove=remove,
                                                        extra_condition="hold_until > :now",
                                                        extra_values={"now": _iso(now)}))
        tx.extend(extra.items()).extend(store.resuse_hold_ops(b, changes.get("hold_until")))
        tx.event("booking.accepted", {**self._snapshot(b), "status": changes["status"],
                                      "waitlist_entry": b.get("waitlist_entry")})
        tx.commit_or(conflict("wrong_status", "this offer is no longer open"))
        b = {**b, **changes, "version": b["version"] + 1}
        if b["status"] == "confirmed":
            b.pop("hold_until", None)
        return self.view(b, caller)

    def decline(self, caller: Any, bid: str) -> dict[str, Any]:
        b, relation = self._load(caller, bid, as_clinic=False)
        if relation != "patient":
            raise forbidden("role_not_allowed")
        b = self._change(b, ("offered", "proposed"), {"status": "declined"}, release=True, event="booking.declined",
                         event_data={"offer": True, "waitlist_entry": b.get("waitlist_entry")})
        return self.view(b, caller)

    def invite(self, caller: Any, req: m.InviteIn) -> dict[str, Any]:
        """A doctor invites one of their patients to a visit, holding the time until they answer."""
        access.require_doctor(caller)
        if not store.is_patient_of(caller.user_id, req.patient_id):
            raise not_found("patient_not_found", "invite patients you have seen")
        ctx = self._context(req.clinic_id, req.service_id, caller.user_id, req.branch_id, req.patient_id,
                            around=_around(m.parse_instant(req.start)))
        now = self._now()
        slot = self._check_slot(ctx, m.parse_instant(req.start), req.branch_id)
        hold = min(now + timedelta(hours=INVITATION_HOLD_HOURS), slot[0][0])
        b = self._new_booking(ctx, req.patient_id, slot, "proposed", hold, now,
                              self._prepayment({**ctx, "strikes": []}, int(now.timestamp())), kind="invitation")
        if req.note:
            b["note"] = req.note
        extra = db.Tx()
        extra.event("booking.invited", self._snapshot(b))
        # an invitation holds the patient's time until answered: it counts toward the clinic's limits
        self._claim(b, ctx, extra, counted=True)
        log.event("booking.invited", booking_id=b["booking_id"])
        return self.view(b, caller)

    # ------------------------------------------------------------------ telemedicine

    def video(self, caller: Any, bid: str) -> dict[str, Any]:
        b, relation = self._load(caller, bid, as_clinic=False)
        if b["service"]["modality"] != "video":
            raise conflict("not_a_video_visit")
        if b["status"] != "confirmed":
            raise conflict("wrong_status", f"the booking is {b['status']}")
        now = self._now()
        opens = _dt(b["start_utc"]) - timedelta(minutes=VIDEO_OPENS_MINUTES)
        if now < opens:
            raise AppError(code="video_not_open_yet", status=409, detail=f"the room opens at {_iso(opens)}")
        if now >= _dt(b["end_utc"]):
            raise AppError(code="video_closed", status=409, detail="the visit is over")
        join = self.video_rooms.join(b["booking_id"], caller.user_id, relation)
        return {"booking_id": b["booking_id"], "opens_at": _iso(opens), "closes_at": b["end_utc"], **join}

    def _chat_booking(self, caller: Any, bid: str) -> dict[str, Any]:
        b, _ = self._load(caller, bid, as_clinic=False)
        if b["service"]["modality"] != "chat":
            raise conflict("not_a_chat_visit")
        return b

    def post_message(self, caller: Any, bid: str, req: m.MessageIn) -> dict[str, Any]:
        b = self._chat_booking(caller, bid)
        now = self._now()
        if b["status"] not in ("confirmed", "completed"):
            raise conflict("wrong_status", f"the booking is {b['status']}")
        if now > _dt(b["end_utc"]) + timedelta(hours=CHAT_OPEN_AFTER_HOURS):
            raise AppError(code="chat_closed", status=409, detail="the conversation closed a day after the visit")
        msg = store.message_item(bid, new_id(), caller.user_id, caller.role, req.text, _iso(now))
        db.put_new(msg)
        return {k: msg[k] for k in ("message_id", "author_id", "author_role", "text", "sent_at")}

    def messages(self, caller: Any, bid: str, q: m.Page) -> dict[str, Any]:
        self._chat_booking(caller, bid)
        items, cursor = store.messages_page(bid, q.limit, q.cursor)
        return {"items": [{k: i[k] for k in ("message_id", "author_id", "author_role", "text", "sent_at")}
                          for i in items], "next_cursor": cursor}

    # ------------------------------------------------------------------ urgent queue

    def _on_shift(self, specialty: str, now: datetime) -> list[dict[str, Any]]:
        return [s for s in store.duty_on_shift(specialty, _iso(now)) if _dt(s["starts_at_utc"]) <= now]

    def join_queue(self, caller: Any, specialty: str, req: m.UrgentJoin) -> dict[str, Any]:
        access.require_patient(caller)
        now = self._now()
        eid = new_id()
        entry = {"entry_id": eid, "specialty": specialty, "patient_id": caller.user_id, "modality": req.modality,
                 "joined_at": _iso(now), "expires_at": int(now.timestamp()) + 7 * 86400}
        if req.complaint:
            entry["complaint"] = req.complaint
        tx = db.Tx()
        store.join_queue_tx(tx, entry)
        tx.commit_or(conflict("already_queued", "you are already in a queue; leave it first"))
        log.event("urgent.joined", specialty=specialty, entry_id=eid)
        return self.queue_status(caller, specialty)

    def _my_entry(self, caller: Any, specialty: str) -> dict[str, Any]:
        pointer = store.urgent_pointer(caller.user_id)
        if pointer is None or pointer["specialty"] != specialty:
            raise not_found()
        entry = store.urgent_entry(specialty, pointer["entry_id"])
        if entry is None:
            raise not_found()
        return entry

    def queue_status(self, caller: Any, specialty: str) -> dict[str, Any]:
        access.require_patient(caller)
        entry = self._my_entry(caller, specialty)
        out = {"entry_id": entry["entry_id"], "specialty": specialty, "status": entry["status"],
               "joined_at": entry["joined_at"]}
        if entry["status"] == "waiting":
            ahead = store.queue_ahead(specialty, entry["SK"])
            out.update(position=ahead + 1, estimated_wait_minutes=self._estimated_wait(specialty, ahead))
        else:
            out["booking_id"] = entry.get("booking_id")
        return out

    def _estimated_wait(self, specialty: str, ahead: int) -> int:
        """Minutes until a duty doctor is free for the patient with ``ahead`` patients before them: each
        doctor on shift offers consultation-long gaps between their live visits (urgent or booked) until the
        shift ends; the patients ahead take the earliest gaps first."""
        now = self._now()
        length = timedelta(minutes=URGENT_CONSULT_MINUTES)
        starts: list[datetime] = []
        for shift in self._on_shift(specialty, now):
            end = _dt(shift["ends_at_utc"])
            busy = sorted((_dt(b["start_utc"]), _dt(b["end_utc"]))
                          for b in store.agenda(shift["doctor_id"], _iso(now - timedelta(hours=4)), _iso(end))
                          if self._live(b, now) and _dt(b["end_utc"]) > now)
            t = now
            while t + length <= end:  # a shift is at most 24 hours: at most 48 gaps
                hit = next((b for b in busy if sl.overlaps((t, t + length), b)), None)
                if hit:
                    t = hit[1]
                    continue
                starts.append(t)
                t += length
        starts.sort()
        if len(starts) > ahead:
            return int((starts[ahead] - now).total_seconds() // 60)
        # more patients than the shifts' free time: after the last gap, one consultation each
        last = (starts[-1] - now) if starts else timedelta(0)
        return int(last.total_seconds() // 60) + (ahead + 1 - len(starts)) * URGENT_CONSULT_MINUTES

    def leave_queue(self, caller: Any, specialty: str) -> None:
        access.require_patient(caller)
        entry = self._my_entry(caller, specialty)
        tx = db.Tx()
        store.leave_queue_tx(tx, caller.user_id, entry)
        tx.commit_or(conflict("wrong_status", "a doctor has just taken you; see your consultation"))

    def take_next(self, caller: Any, specialty: str) -> dict[str, Any]:
        """A duty doctor on shift takes the first waiting patient. Two doctors taking at once get
        different patients: the take is an update conditioned on the entry still waiting."""
        access.require_doctor(caller)
        now = self._now()
        shifts = [s for s in self._on_shift(specialty, now) if s["doctor_id"] == caller.user_id]
        if not shifts:
            raise forbidden("not_on_shift", "you are not on a duty shift for this specialty now")
        shift = self._usable_shift(shifts, caller.user_id, now)
        cursor = None
        released = False
        while True:
            items, cursor = store.queue_page(specialty, cursor)
            for entry in items:
                booking = self._urgent_booking(entry, shift, caller.user_id, now)
                tx = db.Tx()
                store.take_entry_tx(tx, entry, caller.user_id, booking["booking_id"], _iso(now))
                tx.add("booking", store.new_booking_op(booking))
                tx.add("care", store.care_op(caller.user_id, entry["patient_id"], int(now.timestamp())))
                tx.extend(store.lock_ops(booking, int(_dt(booking["end_utc"]).timestamp()) + 86400))
                tx.event("booking.created", self._snapshot(booking))
                try:
                    tx.commit()
                except db.TxCancelled as exc:
                    if exc.any("entry", "pointer"):
                        continue  # another doctor took this patient a moment ago, or they left
                    if exc.any("lock:LOCK#D#"):
                        if not released and self._release_lapsed(booking):
                            released = True
                            continue
                        raise AppError(code="doctor_busy", status=409,
                                       detail="you have a consultation or a booked visit in the next "
                                              f"{URGENT_CONSULT_MINUTES} minutes") from None
                    continue  # the patient is in another visit right now: take the next one
                log.event("urgent.taken", specialty=specialty, entry_id=entry["entry_id"],
                          booking_id=booking["booking_id"])
                return {"entry_id": entry["entry_id"], "patient_id": entry["patient_id"],
                        "booking": self.view(booking)}
            if not cursor:
                raise not_found("queue_empty", "nobody is waiting")

    def _usable_shift(self, shifts: list[dict[str, Any]], doctor_id: str, now: datetime) -> dict[str, Any]:
        """The first of the doctor's current shifts they can serve: still a member of its clinic (a removal that
        has begun ends every shift there, before its cleanup deletes them) and not on leave for the next
        consultation (their own leave, in every clinic, or that clinic's). Two reads: the memberships, the
        leave that overlaps now."""
        span = (now, now + timedelta(minutes=URGENT_CONSULT_MINUTES))
        members = {(i["PK"], i["SK"]): i for i in db.batch_get(
            sorted({clinic_store.membership_key(s["clinic_id"], doctor_id) for s in shifts}))}
        leaves = [x for x in clinic_store.schedule_for(doctor_id, _iso(span[0]), _iso(span[1]), kinds=("EXCEPTION",))
                  if x.get("kind") == "leave"]
        on_leave = False
        for shift in shifts:
            member = members.get(clinic_store.membership_key(shift["clinic_id"], doctor_id))
            if member is None or member.get("status") == clinic_store.REMOVING:
                continue
            if any(x["clinic_id"] in (clinic_store.EVERYWHERE, shift["clinic_id"]) and
                   any(sl.overlaps(span, iv) for iv in sl.leave_intervals(x, span, shift["time_zone"]))
                   for x in leaves):
                on_leave = True
                continue
            return shift
        if on_leave:
            raise forbidden("not_on_shift", "you are on leave now: the urgent queue waits for the doctors on duty")
        raise forbidden("not_on_shift", "you no longer work in the clinic of this duty shift")

    def _urgent_booking(self, entry: dict[str, Any], shift: dict[str, Any], doctor_id: str,
                        now: datetime) -> dict[str, Any]:
        end = now + timedelta(minutes=URGENT_CONSULT_MINUTES)
        # the consultation claims the doctor's and the patient's time like a booking: every 5-minute block it
        # touches (it starts when taken, off the grid)
        grid = now - timedelta(minutes=now.minute % sl.BLOCK_MINUTES, seconds=now.second,
                               microseconds=now.microsecond)
        return {
            "booking_id": new_id(), "kind": "urgent", "patient_id": entry["patient_id"], "doctor_id": doctor_id,
            "clinic_id": shift["clinic_id"], "branch_id": shift["branch_id"], "service_id": "urgent",
            "service": {"name": {"ru": "Срочная консультация", "en": "Urgent consultation"},
                        "duration_minutes": URGENT_CONSULT_MINUTES, "modality": entry["modality"],
                        "resource_kinds": [], "price": None},
            "time_zone": shift["time_zone"], "start_utc": _iso(now), "end_utc": _iso(end), "status": "confirmed",
            "local_day": now.astimezone(zone(shift["time_zone"])).date().isoformat(),
            "created_at": int(now.timestamp()), "version": 1, "resources": [],
            "queued_at": entry["joined_at"],  # the wait in the queue (analytics: median urgent wait)
            "locks": self._person_locks(doctor_id, entry["patient_id"], (grid, end)),
            "policy": {"cancellation_window_hours": 0},
        }


def to_ics(bookings: list[dict[str, Any]], uid_prefix: str, private: bool = False) -> str:
    """RFC 5545 calendar text. A private feed names no service (that would be medical detail)."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")

    def stamp(iso: str) -> str:
        return iso.replace("-", "").replace(":", "")

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//clinic-backend//bookings//RU", "CALSCALE:GREGORIAN"]
    now = stamp(clock.iso(clock.now()))
    for b in bookings:
        modality = b["service"]["modality"]
        summary = {"in_person": "Приём / Visit", "video": "Видеоконсультация / Video visit",
                   "chat": "Чат-консультация / Chat visit"}[modality]
        if not private:
            summary = f"{b['service']['name'].get('ru')} / {b['service']['name'].get('en')}"
        lines += ["BEGIN:VEVENT", f"UID:{b['booking_id']}@clinic-backend", f"DTSTAMP:{now}",
                  f"DTSTART:{stamp(b['start_utc'])}", f"DTEND:{stamp(b['end_utc'])}", f"SUMMARY:{esc(summary)}",
                  f"STATUS:{'CONFIRMED' if b['status'] in ('confirmed', 'completed') else 'TENTATIVE'}"]
        if b.get("clinic_name"):
            lines.append(f"LOCATION:{esc(b['clinic_name'].get('ru', ''))}")
        if not private and b["service"].get("preparation"):
            lines.append(f"DESCRIPTION:{esc(b['service']['preparation'].get('ru', ''))}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
