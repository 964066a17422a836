"""Analytics: counters kept by event handlers, and the figures a clinic's director and a doctor read.

Every figure comes from a *source* (a booking, its signed conclusion, its feedback answer, a payment, a
refund, a cashback movement). ``*_parts`` below are pure functions from a source's current state to what it
contributes to which counter; ``_apply`` writes the difference from the contribution recorded before. The
handlers, the rebuild and the tests use the same functions, so live and rebuilt counters agree.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Optional

from chalicelib.analytics import access, store
from chalicelib.analytics import models as m
from chalicelib.core import clock, db, log
from chalicelib.core.errors import field_invalid

BOOKED = ("held", "confirmed", "completed", "no_show")
SOURCES = {"scheduled": "app", "invitation": "invitation", "waitlist": "waitlist", "urgent": "urgent"}
MODALITIES = ("in_person", "video", "chat", "urgent")
# minutes a patient waited in the urgent queue: the upper edge of each bucket (the last is open)
WAIT_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440)
KNOWN_REASONS = ("doctor_left_clinic", "doctor_leave", "patient_request", "duplicate", "illness")
PREPAID_METHODS = ("online", "link")
MONEY_PREFIXES = ("c|rev|", "c|pay_n", "c|prepaid_n", "c|refund", "c|cb_")
CONCLUSION_HOURS = 24

Parts = dict[str, dict[str, int]]


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _minutes(b: dict[str, Any]) -> int:
    return max(0, int((_dt(b["end_utc"]) - _dt(b["start_utc"])).total_seconds() // 60))


def _add(parts: Parts, pk: str, sk: str, name: str, n: int = 1) -> None:
    if n:
        t = store.target(pk, sk)
        parts.setdefault(t, {})
        parts[t][name] = parts[t].get(name, 0) + int(n)


def reason_key(reason: Optional[str]) -> str:
    """A cancellation's reason as a bucket: a known code as itself, free text as ``other``, none as ``none``."""
    if not reason:
        return "none"
    return reason if reason in KNOWN_REASONS else "other"


def wait_bucket(minutes: int) -> str:
    for edge in WAIT_EDGES:
        if minutes <= edge:
            return str(edge)
    return "inf"


def modality_of(b: dict[str, Any]) -> str:
    return "urgent" if b.get("kind") == "urgent" else str((b.get("service") or {}).get("modality") or "in_person")


# ------------------------------------------------------------------ contributions (pure)

def booking_parts(b: dict[str, Any]) -> Parts:
    """What a booking in its current state adds to its clinic's local day and to its patient's summary."""
    parts: Parts = {}
    cid, did, status = b["clinic_id"], b["doctor_id"], b["status"]
    day = (store.day_pk(cid), store.day_sk(b["local_day"]))
    patient = (store.patient_pk(cid), store.patient_sk(b["patient_id"]))
    cancelled = status in ("cancelled_by_patient", "cancelled_by_clinic")
    if status in BOOKED or cancelled:
        _add(parts, *day, f"c|bk|{SOURCES.get(b.get('kind', 'scheduled'), 'app')}")
    if status in BOOKED:
        minutes = _minutes(b)
        _add(parts, *day, f"d|{did}|bmin", minutes)
        _add(parts, *day, f"b|{b['branch_id']}|bmin", minutes)
        for r in b.get("resources") or []:
            _add(parts, *day, f"r|{r['resource_id']}|bmin", minutes)
    if b.get("kind") == "urgent" and b.get("queued_at") and status in BOOKED:
        waited = int((_dt(b["start_utc"]) - _dt(b["queued_at"])).total_seconds() // 60)
        _add(parts, *day, f"d|{did}|uw|{wait_bucket(max(0, waited))}")
    if status == "completed":
        _add(parts, *day, f"d|{did}|done|{modality_of(b)}")
        price = (b.get("service") or {}).get("price") or {}
        if price.get("amount"):
            _add(parts, *day, f"d|{did}|sum|{price['currency']}", int(price["amount"]))
        _add(parts, *patient, "visits")
    if status == "no_show":
        _add(parts, *day, f"d|{did}|noshow")
        _add(parts, *patient, "strikes")
    if cancelled:
        c = b.get("cancellation") or {}
        _add(parts, *day, f"c|cx|{c.get('by') or ('clinic' if status == 'cancelled_by_clinic' else 'patient')}")
        _add(parts, *day, f"c|cxr|{reason_key(c.get('reason'))}")
        if c.get("late"):
            _add(parts, *day, f"d|{did}|late")
            _add(parts, *patient, "strikes")
    return parts


def conclusion_parts(c: dict[str, Any], b: dict[str, Any]) -> Parts:
    """A signed conclusion counts on its visit's day; within 24 h of the visit's end it counts as on time."""
    parts: Parts = {}
    if c.get("status") != "signed" or b.get("status") != "completed":
        return parts
    day = (store.day_pk(b["clinic_id"]), store.day_sk(b["local_day"]))
    _add(parts, *day, f"d|{b['doctor_id']}|concl")
    if _dt(c["signed_at"]) <= _dt(b["end_utc"]) + timedelta(hours=CONCLUSION_HOURS):
        _add(parts, *day, f"d|{b['doctor_id']}|c24")
    return parts


def feedback_parts(answer: dict[str, Any], b: dict[str, Any]) -> Parts:
    parts: Parts = {}
    day = (store.day_pk(b["clinic_id"]), store.day_sk(b["local_day"]))
    did, score = answer["doctor_id"], int(answer["score"])
    _add(parts, *day, f"d|{did}|fb_n")
    _add(parts, *day, f"d|{did}|fb_sum", score)
    if score >= 9:
        _add(parts, *day, f"d|{did}|fb_prom")
    elif score <= 6:
        _add(parts, *day, f"d|{did}|fb_det")
    return parts


def payment_parts(data: dict[str, Any], day: str) -> Parts:
    parts: Parts = {}
    cid, cur, amount = data["clinic_id"], data["currency"], int(data["amount"])
    d = (store.day_pk(cid), store.day_sk(day))
    method = data.get("method") or "online"
    _add(parts, *d, f"c|rev|{method}|{cur}", amount)
    _add(parts, *d, "c|pay_n")
    if method in PREPAID_METHODS:
        _add(parts, *d, "c|prepaid_n")
    if data.get("doctor_id"):
        _add(parts, *d, f"d|{data['doctor_id']}|paid|{cur}", amount)
    _add(parts, store.day_pk(cid), store.total_sk(), "pay_n")
    if data.get("patient_id"):
        _add(parts, store.patient_pk(cid), store.patient_sk(data["patient_id"]), f"spend|{cur}", amount)
    return parts


def refund_parts(data: dict[str, Any], day: str) -> Parts:
    parts: Parts = {}
    cid, cur, amount = data["clinic_id"], data["currency"], int(data["amount"])
    d = (store.day_pk(cid), store.day_sk(day))
    _add(parts, *d, f"c|refund|{cur}", amount)
    _add(parts, *d, "c|refund_n")
    _add(parts, store.day_pk(cid), store.total_sk(), "pay_n")
    if data.get("patient_id"):
        _add(parts, store.patient_pk(cid), store.patient_sk(data["patient_id"]), f"spend|{cur}", -amount)
    return parts


# A wallet movement as (the day counter it moves, its sign there, its sign on what is outstanding): a reversal
# (a refunded visit) takes back what was earned; spent cashback given back on a refund is spent no more.
CASHBACK_MOVES = {"earned": ("earned", 1, 1), "reversed": ("earned", -1, -1), "spent": ("spent", 1, -1),
                  "returned": ("spent", -1, 1), "expired": ("expired", 1, -1)}


def cashback_parts(movement: str, data: dict[str, Any], day: str) -> Parts:
    """``movement`` is one of ``CASHBACK_MOVES``; outstanding (the clinic's liability) = earned - spent - expired."""
    parts: Parts = {}
    cid, cur, amount = data["clinic_id"], data.get("currency"), int(data["amount"])
    if not cur:
        return parts
    counter, sign, outstanding = CASHBACK_MOVES[movement]
    _add(parts, store.day_pk(cid), store.day_sk(day), f"c|cb_{counter}|{cur}", sign * amount)
    total = (store.day_pk(cid), store.total_sk())
    _add(parts, *total, "cb_n")
    _add(parts, *total, f"cb_out|{cur}", outstanding * amount)
    return parts


def local_day(moment: datetime, zone_name: str) -> str:
    from chalicelib.core.tz import local_day as day_in

    return day_in(moment, zone_name).isoformat()


# ------------------------------------------------------------------ reading counters back

def _num(counters: dict[str, Any], name: str) -> int:
    return int(counters.get(name) or 0)


def _median_wait(hist: dict[str, int]) -> Optional[int]:
    """The median of a histogram of waits, interpolated inside the bucket that holds it (minutes)."""
    n = sum(hist.values())
    if not n:
        return None
    half, seen, lower = n / 2, 0, 0
    for edge in (*WAIT_EDGES, None):
        key = str(edge) if edge else "inf"
        count = hist.get(key, 0)
        if count and seen + count >= half:
            if edge is None:
                return lower
            return round(lower + (edge - lower) * (half - seen) / count)
        seen += count
        lower = edge or lower
    return lower


def _nps(n: int, total: int, prom: int, det: int) -> dict[str, Any]:
    return {"answers": n, "average": round(total / n, 1) if n else None,
            "nps": round(100 * (prom - det) / n) if n else None, "promoters": prom, "detractors": det}


def _rate(booked: int, scheduled: int) -> Optional[float]:
    return round(booked / scheduled, 4) if scheduled else None


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": int(amount), "currency": currency}


class AnalyticsService:
    def __init__(self, settings: Any, notify: Any = None) -> None:
        self.settings = settings
        self._notify = notify

    # ------------------------------------------------------------------ applying a source

    def _apply(self, source_id: str, parts: Parts, extra: Optional[db.Tx] = None) -> bool:
        """Write the difference between ``parts`` and the source's recorded contribution; True if anything
        changed. A concurrent apply of the same source (the version moved) reads again and retries."""
        for _ in range(10):
            seen = store.get_source(source_id)
            old = (seen or {}).get("parts") or {}
            deltas = store.diff(old, parts)
            if not deltas and seen is not None:
                return False
            tx = store.apply_ops(source_id, seen, parts, deltas, int(clock.now().timestamp()))
            if extra is not None:
                tx.extend(extra.items())
            try:
                tx.commit()
                return bool(deltas)
            except db.TxCancelled as exc:
                if exc.any("source"):
                    continue
                raise
        raise RuntimeError("analytics contribution kept changing")

    def apply_booking(self, booking_id: str) -> bool:
        from chalicelib.booking import store as booking_store

        b = booking_store.get_booking(booking_id)
        if b is None or not b.get("local_day"):
            return False
        changed = self._apply(f"booking#{booking_id}", booking_parts(b))
        if b["status"] == "completed":
            store.set_last_visit(b["clinic_id"], b["patient_id"], b.get("service_id") or "any", b["local_day"])
            store.set_last_visit(b["clinic_id"], b["patient_id"], "any", b["local_day"])
        return changed

    def apply_conclusion(self, data: dict[str, Any]) -> bool:
        from chalicelib.booking import store as booking_store

        b = booking_store.get_booking(data["booking_id"])
        if b is None:
            return False
        c = {"status": "signed", "signed_at": data["signed_at"]}
        return self._apply(f"conclusion#{b['booking_id']}", conclusion_parts(c, b))

    def apply_feedback(self, data: dict[str, Any]) -> bool:
        from chalicelib.booking import store as booking_store

        b = booking_store.get_booking(data["booking_id"])
        if b is None:
            return False
        return self._apply(f"feedback#{b['booking_id']}", feedback_parts({**data, "doctor_id": b["doctor_id"]}, b))

    def _money_day(self, data: dict[str, Any], at: str) -> str:
        """The local day a money event counts on: in its visit's zone, else the clinic's."""
        zone_name = None
        if data.get("booking_id"):
            from chalicelib.booking import store as booking_store

            b = booking_store.get_booking(data["booking_id"])
            zone_name = (b or {}).get("time_zone")
        return local_day(_dt(at), zone_name or access.clinic_zone(data["clinic_id"]))

    def apply_payment(self, event: dict[str, Any]) -> bool:
        data = event["data"]
        day = self._money_day(data, event["created_at"])
        return self._apply(f"payment#{data['payment_id']}", payment_parts(data, day))

    def apply_refund(self, event: dict[str, Any]) -> bool:
        data = event["data"]
        day = self._money_day(data, event["created_at"])
        return self._apply(f"refund#{data.get('refund_id') or event['event_id']}", refund_parts(data, day))

    def apply_cashback(self, movement: str, event: dict[str, Any]) -> bool:
        data = event["data"]
        day = self._money_day(data, event["created_at"])
        # keyed by the wallet entry the movement wrote: a copy of the event under another id counts once
        return self._apply(f"cashback#{data.get('entry_id') or event['event_id']}", cashback_parts(movement, data, day))

    # ------------------------------------------------------------------ scheduled minutes

    def snapshot_schedule(self, clinic_id: str, first: date, last: date) -> int:
        """Write each day's scheduled minutes (per doctor, branch and room) from the clinic's templates,
        extra hours and leave. Set, not added: run again, it writes the same."""
        days = {}
        for day, minutes in access.scheduled_minutes(clinic_id, first, last).items():
            store.set_scheduled(clinic_id, day, minutes)
            days[day] = minutes
        return len(days)

    def snapshot_all(self, days_back: int = 1, days_ahead: int = 14) -> dict[str, int]:
        from chalicelib.clinics import store as clinic_store

        clinics = days = 0
        cursor = None
        while True:
            page, cursor = clinic_store.clinics_by_status("active", 100, cursor)
            for c in page:
                today = self._today(access.clinic_zone(c["clinic_id"]))
                days += self.snapshot_schedule(c["clinic_id"], today - timedelta(days=days_back),
                                               today + timedelta(days=days_ahead))
                clinics += 1
            if not cursor:
                break
        log.event("job.analytics_schedules", clinics=clinics, days=days)
        return {"clinics": clinics, "days": days}

    # ------------------------------------------------------------------ figures

    @staticmethod
    def _today(zone_name: str) -> date:
        return date.fromisoformat(local_day(clock.now(), zone_name))

    def figures(self, clinic_id: str, first: date, last: date, doctor_id: Optional[str] = None,
                branch_id: Optional[str] = None, with_clinic: bool = True) -> dict[str, Any]:
        items = store.days(clinic_id, first.isoformat(), last.isoformat())
        return self.summarise(items, first, last, doctor_id, branch_id, with_clinic)

    def summarise(self, items: list[dict[str, Any]], first: date, last: date, doctor_id: Optional[str] = None,
                  branch_id: Optional[str] = None, with_clinic: bool = True,
                  total: Optional[dict[str, Any]] = None, currency: str = "RUB") -> dict[str, Any]:
        doctors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        clinic: dict[str, int] = defaultdict(int)
        series = []
        by_day = {i["SK"][4:]: i for i in items}
        day = first
        while day <= last:
            i = by_day.get(day.isoformat(), {})
            row: dict[str, Any] = {"date": day.isoformat(), "booked_minutes": 0, "scheduled_minutes": 0, "visits": 0,
                   "nps_answers": 0, "nps_score_sum": 0, "revenue": 0, "refunded": 0}
            for name, value in i.items():
                if not isinstance(value, int) or "|" not in name:
                    continue
                kind, rest = name.split("|", 1)
                if kind == "d":
                    did, metric = rest.split("|", 1)
                    if doctor_id and did != doctor_id:
                        continue
                    doctors[did][metric] += value
                    if metric in ("bmin", "smin") and not branch_id:
                        row["booked_minutes" if metric == "bmin" else "scheduled_minutes"] += value
                    elif metric.startswith("done|"):
                        row["visits"] += value
                    elif metric == "fb_n":
                        row["nps_answers"] += value
                    elif metric == "fb_sum":
                        row["nps_score_sum"] += value
                elif kind in ("c", "b", "r") and with_clinic:
                    clinic[name] += value
                    if branch_id and kind == "b" and rest in (f"{branch_id}|bmin", f"{branch_id}|smin"):
                        row["booked_minutes" if rest.endswith("bmin") else "scheduled_minutes"] += value
                    if name.startswith("c|rev|"):
                        row["revenue"] += value
                    elif name.startswith("c|refund|"):
                        row["refunded"] += value
            row["fill_rate"] = _rate(row["booked_minutes"], row["scheduled_minutes"])
            series.append(row)
            day += timedelta(days=1)
        out: dict[str, Any] = {"period": {"date_from": first.isoformat(), "date_to": last.isoformat()},
                               "doctors": [self._doctor(did, c, currency) for did, c in sorted(doctors.items())],
                               "series": series}
        if doctor_id and not doctors:
            out["doctors"] = [self._doctor(doctor_id, defaultdict(int), currency)]
        if with_clinic:
            out["clinic"] = self._clinic(clinic, doctors, total or {}, currency, branch_id)
        return out

    @staticmethod
    def _doctor(did: str, c: dict[str, int], currency: str) -> dict[str, Any]:
        visits = {mod: c.get(f"done|{mod}", 0) for mod in MODALITIES}
        concl, c24 = c.get("concl", 0), c.get("c24", 0)
        hist = {k[3:]: v for k, v in c.items() if k.startswith("uw|")}
        return {
            "doctor_id": did, "visits": {**visits, "total": sum(visits.values())},
            "sum": _money(c.get(f"sum|{currency}", 0), currency),
            "no_shows": c.get("noshow", 0), "late_cancellations": c.get("late", 0),
            "conclusions": {"signed": concl, "within_24h": c24, "share_within_24h": _rate(c24, concl)},
            "nps": _nps(c.get("fb_n", 0), c.get("fb_sum", 0), c.get("fb_prom", 0), c.get("fb_det", 0)),
            "urgent": {"taken": sum(hist.values()), "median_wait_minutes": _median_wait(hist)},
            "fill": {"booked_minutes": c.get("bmin", 0), "scheduled_minutes": c.get("smin", 0),
                     "rate": _rate(c.get("bmin", 0), c.get("smin", 0))},
        }

    @staticmethod
    def _clinic(c: dict[str, int], doctors: dict[str, dict[str, int]], total: dict[str, Any], currency: str,
                branch_id: Optional[str]) -> dict[str, Any]:
        def grouped(prefix: str) -> dict[str, int]:
            return {k[len(prefix):]: v for k, v in sorted(c.items()) if k.startswith(prefix) and v}

        booked = sum(d.get("bmin", 0) for d in doctors.values())
        scheduled = sum(d.get("smin", 0) for d in doctors.values())
        branches: dict[str, dict[str, int]] = defaultdict(lambda: {"bmin": 0, "smin": 0})
        rooms: dict[str, dict[str, int]] = defaultdict(lambda: {"bmin": 0, "smin": 0})
        for k, v in c.items():
            kind, *rest = k.split("|")
            if kind in ("b", "r") and len(rest) == 2 and rest[1] in ("bmin", "smin"):
                (branches if kind == "b" else rooms)[rest[0]][rest[1]] += v
        if branch_id:
            b = branches.get(branch_id, {"bmin": 0, "smin": 0})
            booked, scheduled = b["bmin"], b["smin"]
        pay_seen = int(total.get("pay_n") or 0) > 0
        cb_seen = int(total.get("cb_n") or 0) > 0
        rev = grouped("c|rev|")
        online = sum(v for k, v in rev.items() if k.split("|")[0] in PREPAID_METHODS and k.endswith(currency))
        reception = sum(v for k, v in rev.items() if k.split("|")[0] not in PREPAID_METHODS and k.endswith(currency))
        pay_n = c.get("c|pay_n", 0)
        fb = [sum(d.get(k, 0) for d in doctors.values()) for k in ("fb_n", "fb_sum", "fb_prom", "fb_det")]
        return {
            "fill": {"booked_minutes": booked, "scheduled_minutes": scheduled, "rate": _rate(booked, scheduled)},
            "branches": [{"branch_id": k, "booked_minutes": v["bmin"], "scheduled_minutes": v["smin"],
                          "rate": _rate(v["bmin"], v["smin"])} for k, v in sorted(branches.items())],
            "rooms": [{"resource_id": k, "booked_minutes": v["bmin"], "scheduled_minutes": v["smin"],
                       "rate": _rate(v["bmin"], v["smin"])} for k, v in sorted(rooms.items())],
            "bookings_by_source": {s: c.get(f"c|bk|{s}", 0) for s in SOURCES.values()},
            "cancellations": {"by": grouped("c|cx|"), "reasons": grouped("c|cxr|"),
                              "late": sum(d.get("late", 0) for d in doctors.values())},
            "no_shows": sum(d.get("noshow", 0) for d in doctors.values()),
            "visits": sum(v for d in doctors.values() for k, v in d.items() if k.startswith("done|")),
            "revenue": {"available": pay_seen,
                        **({"online": _money(online, currency), "reception": _money(reception, currency),
                            "refunded": _money(c.get(f"c|refund|{currency}", 0), currency),
                            "payments": pay_n,
                            "share_prepaid": _rate(c.get("c|prepaid_n", 0), pay_n)} if pay_seen else {})},
            "cashback": {"available": cb_seen,
                         **({"earned": _money(c.get(f"c|cb_earned|{currency}", 0), currency),
                             "spent": _money(c.get(f"c|cb_spent|{currency}", 0), currency),
                             "expired": _money(c.get(f"c|cb_expired|{currency}", 0), currency),
                             "outstanding": _money(int(total.get(f"cb_out|{currency}") or 0), currency)}
                            if cb_seen else {})},
            "nps": _nps(*fb),
        }

    def dashboard(self, caller: Any, clinic_id: str, q: m.PeriodQuery) -> dict[str, Any]:
        clinic = access.require_reader(caller, clinic_id)
        if q.doctor_id and not access.is_doctor_of(clinic_id, q.doctor_id):
            raise field_invalid("doctor_id", "unknown_doctor", "not a doctor of this clinic")
        zone_name = access.zone_of(clinic)
        first, last = q.bounds(self._today(zone_name))
        items = store.days(clinic_id, first.isoformat(), last.isoformat())
        out = self.summarise(items, first, last, q.doctor_id, q.branch_id, True, store.total(clinic_id),
                             clinic.get("currency") or "RUB")
        out["clinic_id"] = clinic_id
        out["period"].update(kind=q.period, time_zone=zone_name)
        return out

    def my_figures(self, caller: Any, q: m.MyPeriodQuery) -> dict[str, Any]:
        """The doctor's own visits, sums and NPS in one clinic (never a comment, never a colleague)."""
        access.require_doctor(caller, q.clinic_id)
        if q.doctor_id and q.doctor_id != caller.user_id:
            raise field_invalid("doctor_id", "not_allowed", "a doctor sees their own figures")
        clinic = access.clinic(q.clinic_id)
        zone_name = access.zone_of(clinic)
        first, last = q.bounds(self._today(zone_name))
        items = store.days(q.clinic_id, first.isoformat(), last.isoformat())
        out = self.summarise(items, first, last, caller.user_id, None, False, None, clinic.get("currency") or "RUB")
        out["period"].update(kind=q.period, time_zone=zone_name)
        mine = out.pop("doctors")[0]
        out["clinic_id"] = q.clinic_id
        out["me"] = {k: mine[k] for k in ("doctor_id", "visits", "sum", "no_shows", "conclusions", "nps", "fill")}
        out["series"] = [{k: r[k] for k in ("date", "visits", "nps_answers", "nps_score_sum")} for r in out["series"]]
        return out

    # ------------------------------------------------------------------ segments and recalls

    def _segment(self, clinic_id: str, q: m.SegmentQuery, currency: str) -> list[dict[str, Any]]:
        zone_name = access.clinic_zone(clinic_id)
        today = self._today(zone_name)
        rows = []
        for p in store.patients(clinic_id):
            last_any = p.get("last|any")
            last = p.get(f"last|{q.service_id}") if q.service_id else last_any
            row = {"patient_id": p["patient_id"] if "patient_id" in p else p["SK"][2:],
                   "last_visit": last, "days_since": (today - date.fromisoformat(last)).days if last else None,
                   "visits": int(p.get("visits") or 0), "strikes": int(p.get("strikes") or 0),
                   "spend": _money(int(p.get(f"spend|{currency}") or 0), currency)}
            if q.kind == "lapsed" and last and row["days_since"] > q.days:
                rows.append(row)
            elif q.kind == "strikes" and row["strikes"] >= q.min_strikes:
                rows.append(row)
            elif q.kind == "spend" and row["spend"]["amount"] >= max(1, q.min_spend):
                rows.append(row)
        order = {"lapsed": lambda r: (-r["days_since"], r["patient_id"]),
                 "strikes": lambda r: (-r["strikes"], r["patient_id"]),
                 "spend": lambda r: (-r["spend"]["amount"], r["patient_id"])}[q.kind]
        return sorted(rows, key=order)

    @staticmethod
    def _binding(clinic_id: str, q: m.SegmentQuery) -> str:
        import hashlib
        import json

        raw = json.dumps([clinic_id, q.model_dump(mode="json", exclude={"cursor", "limit"})], sort_keys=True)
        return "segment:" + hashlib.sha256(raw.encode()).hexdigest()[:16]

    def segment(self, caller: Any, clinic_id: str, q: m.SegmentQuery) -> dict[str, Any]:
        clinic = access.require_reader(caller, clinic_id)
        rows = self._segment(clinic_id, q, clinic.get("currency") or "RUB")
        binding = self._binding(clinic_id, q)
        start = db.decode_cursor(q.cursor, binding) if q.cursor else {"o": 0}
        offset = int((start or {}).get("o", 0))
        page = rows[offset:offset + q.limit]
        more = offset + q.limit < len(rows)
        return {"items": page, "total": len(rows),
                "next_cursor": db.encode_cursor({"o": offset + q.limit}, binding) if more else None}

    def export(self, caller: Any, clinic_id: str, q: m.SegmentQuery, lang: str) -> str:
        """The whole segment as CSV: UTF-8 with a byte-order mark and ``;`` between fields, as a spreadsheet
        set to Russian opens it."""
        clinic = access.require_reader(caller, clinic_id)
        rows = self._segment(clinic_id, q, clinic.get("currency") or "RUB")
        heads = {"ru": ("Пациент", "Последний визит", "Дней с визита", "Визитов", "Нарушений", "Оплачено", "Валюта"),
                 "en": ("Patient", "Last visit", "Days since", "Visits", "Strikes", "Spent", "Currency")}
        buf = io.StringIO()
        out = csv.writer(buf, delimiter=";", lineterminator="\r\n")
        out.writerow(heads.get(lang, heads["ru"]))
        from chalicelib.core.money import MINOR_UNITS

        for r in rows:
            cur = r["spend"]["currency"]
            digits = MINOR_UNITS.get(cur, 2)
            amount = f"{r['spend']['amount'] / 10 ** digits:.{digits}f}"
            out.writerow((r["patient_id"], r["last_visit"] or "", "" if r["days_since"] is None else r["days_since"],
                          r["visits"], r["strikes"], amount.replace(".", "," if lang == "ru" else "."), cur))
        return "\ufeff" + buf.getvalue()

    def recall(self, caller: Any, clinic_id: str, req: m.RecallIn) -> dict[str, Any]:
        """Ask patients of this clinic to book again: one event; its consumer sends each a ``recall``
        through the notification service (once per patient, however often the event is delivered)."""
        access.require_reader(caller, clinic_id, admin_only=True)
        known = store.known_patients(clinic_id, req.patient_ids)
        unknown = [i for i, pid in enumerate(req.patient_ids) if pid not in known]
        if unknown:
            raise field_invalid(f"patient_ids.{unknown[0]}", "unknown_patient", "not a patient of this clinic")
        tx = db.Tx()
        eid = tx.event("analytics.recall", {"clinic_id": clinic_id, "patient_ids": req.patient_ids,
                                            "by": caller.user_id})
        tx.commit()
        log.event("analytics.recall", clinic_id=clinic_id, patients=len(req.patient_ids))
        return {"recall_id": eid, "patients": len(req.patient_ids)}

    def send_recalls(self, event: dict[str, Any]) -> int:
        sent = 0
        notify = self._notify() if callable(self._notify) else self._notify
        for pid in event["data"]["patient_ids"]:
            outcome = notify.send(pid, "recall", f"{event['event_id']}:recall:{pid}", None, link="book")
            sent += outcome != "duplicate"
        return sent

    # ------------------------------------------------------------------ rebuild

    def rebuild(self, clinic_id: str, first: date, last: date) -> dict[str, int]:
        """Recompute a clinic's day counters in [first, last] from the source items (its bookings, their
        signed conclusions and feedback answers) and write them over the live ones. Money and cashback
        counters (their sources live in the payments feature) and the scheduled minutes (a snapshot of the
        schedule as it stood) are kept as they were. Contributions are rewritten to match, and each
        patient's summary is corrected by the difference."""
        lo = (datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc) - timedelta(hours=14))
        hi = (datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
              + timedelta(hours=12))
        bookings = [b for b in access.clinic_calendar(clinic_id, clock.iso(lo), clock.iso(hi))
                    if b.get("local_day") and first.isoformat() <= b["local_day"] <= last.isoformat()]
        by_id = {b["booking_id"]: b for b in bookings}
        sources: dict[str, Parts] = {}
        done = [b for b in bookings if b["status"] == "completed"]
        conclusions = access.signed_conclusions(done)
        answers = access.feedback_answers(clinic_id, [b["booking_id"] for b in done])
        for b in bookings:
            sources[f"booking#{b['booking_id']}"] = booking_parts(b)
            if b["booking_id"] in conclusions:
                sources[f"conclusion#{b['booking_id']}"] = conclusion_parts(conclusions[b["booking_id"]], b)
            if b["booking_id"] in answers:
                sources[f"feedback#{b['booking_id']}"] = feedback_parts(answers[b["booking_id"]], b)
        kept = {i["SK"][4:]: {k: v for k, v in i.items() if isinstance(v, int) and
                              (k.startswith(MONEY_PREFIXES) or k.endswith("|smin") or k.startswith("d|") and
                               "|paid|" in k)}
                for i in store.days(clinic_id, first.isoformat(), last.isoformat())}
        counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for day, values in kept.items():
            for k, v in values.items():
                counters[day][k] += v
        for parts in sources.values():
            for t, values in parts.items():
                pk, sk = store.split_target(t)
                if sk.startswith("DAY#"):
                    for k, v in values.items():
                        counters[sk[4:]][k] += v
        store.wipe_days(clinic_id, first.isoformat(), last.isoformat())
        for day, values in counters.items():
            store.put_day(clinic_id, day, {k: v for k, v in values.items() if v})
        now = int(clock.now().timestamp())
        for sid, parts in sources.items():
            seen = store.get_source(sid)
            old = (seen or {}).get("parts") or {}
            patient_deltas = {t: d for t, d in store.diff(old, parts).items() if not t.split("|", 1)[1].startswith(
                ("DAY#", "TOTAL"))}
            for t, delta in patient_deltas.items():
                pk, sk = store.split_target(t)
                store.add_counters(pk, sk, delta)
            store.put_source(sid, parts, now)
            found = by_id.get(sid.split("#", 1)[1]) if sid.startswith("booking#") else None
            if found and found["status"] == "completed":
                store.set_last_visit(clinic_id, found["patient_id"], found.get("service_id") or "any",
                                     found["local_day"])
                store.set_last_visit(clinic_id, found["patient_id"], "any", found["local_day"])
        return {"bookings": len(bookings), "sources": len(sources), "days": len(counters)}


def iter_days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
