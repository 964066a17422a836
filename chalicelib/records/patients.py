"""A doctor's "my patients": one row per (doctor, patient), kept by the events that change it.

A patient is on a doctor's list while a live grant opens the card to the doctor (to them, or to a clinic they
work in now) or while an observation the doctor set in a signed conclusion lasts. Each row carries the
grants' scope and end, the observation's end and the patient's next visits with the doctor, so the list
is one query per page (``store.care_page``): the row's index key is the instant its last reason ends, and
the query's key range leaves out every row whose reasons have all ended.

One writer: ``refresh`` recomputes a row from the truth (the card's partition: grants and conclusions; the
patient's upcoming visits; the account's name; the doctor's clinics) and writes it only over the version it
read before reading the truth, so of two refreshes racing the later-reading one wins and the other tries
again. It is idempotent and order-independent, which is what an outbox handler must be
(``records/jobs.py``): a grant made or revoked, a conclusion signed or amended, a visit booked, moved,
cancelled or done, a doctor joining or leaving a clinic.

Whole-clinic grants are fanned out to the clinic's doctors when the grant is made (and to a doctor when they
join the clinic; a doctor leaving it has them taken off). A doctor in several clinics has one row per
patient, its grants naming the clinic they came through (docs/access-patterns.md).
"""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Optional

from chalicelib.core import clock
from chalicelib.records import access, store
from chalicelib.records import models as m

if TYPE_CHECKING:
    from chalicelib.records.service import RecordsService

UPCOMING_KEPT = 5  # next visits kept on a row: the first is shown; the others take its place once it has passed
VISIT_STATUSES = ("held", "confirmed")
RETRIES = 5
# what a row holds; version and computed_at are bookkeeping, not content
CONTENT = ("doctor_id", "patient_id", "first_name", "last_name", "grants", "observation_end", "observation_until",
           "visits", "listed_until")


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day where it is shorter: 31 Aug + 6 months = 28/29 Feb)."""
    y, mo = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, mo + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def observation_end(visit_start_utc: str, zone: Optional[str], follow_up_date: Optional[str],
                    observation_months: Optional[int]) -> Optional[date]:
    """The last day of an observation: the follow-up date, or the visit's local day plus the period."""
    if follow_up_date:
        return date.fromisoformat(follow_up_date)
    if not observation_months:
        return None
    from chalicelib.core.tz import local_day

    return add_months(local_day(visit_start_utc, zone), int(observation_months))


def day_ends(day: date, zone: Optional[str]) -> str:
    """The instant a local day ends (its next midnight in the zone), in UTC."""
    from chalicelib.core.tz import zone as tz_zone

    tz = tz_zone(zone) if zone else timezone.utc
    nxt = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return clock.iso(nxt.astimezone(timezone.utc))


class CareRows:
    def __init__(self, svc: "RecordsService") -> None:
        self.svc = svc

    # ------------------------------------------------------------------ the truth

    def _truth(self, pid: str, booking_id: Optional[str]) -> dict[str, Any]:
        """What every row of this patient is computed from, read once for all the doctors refreshed."""
        from chalicelib.booking import models as booking_models
        from chalicelib.booking import store as booking_store
        from chalicelib.identity import store as identity_store

        now = clock.now()
        parts = store.read_card_all(pid)
        horizon = now + timedelta(days=booking_models.MAX_HORIZON_DAYS + 1)
        visits = booking_store.patient_visits(pid, clock.iso(now), clock.iso(horizon))
        if booking_id:  # the visit an event is about, read consistently (the index may lag behind its change)
            b = booking_store.get_booking(booking_id)
            visits = [v for v in visits if v["booking_id"] != booking_id] + ([b] if b else [])
        user = identity_store.get_user(pid) or {}
        return {"now": now, "grants": parts["grant"], "conclusions": parts["conclusion"], "visits": visits,
                "user": user}

    def _observation(self, did: str, truth: dict[str, Any]) -> tuple[Optional[str], Optional[str]]:
        """The latest end of an observation this doctor set in a signed conclusion (day, and the instant it ends)."""
        from chalicelib.records.conclusions import Conclusions

        best: Optional[tuple[str, str]] = None
        for c in Conclusions.current(truth["conclusions"]):
            if c["doctor_id"] != did or c["status"] != "signed":
                continue
            if "observation_end" in c:
                end = date.fromisoformat(c["observation_end"]) if c["observation_end"] else None
            else:  # written before the end was kept in clear: from the sealed conclusion
                data = self.svc.conclusions._open(c)
                end = observation_end(c["visit_start"], c.get("time_zone"), data.get("follow_up_date"),
                                      data.get("observation_months"))
            if end is None:
                continue
            until = day_ends(end, c.get("time_zone"))
            if best is None or until > best[1]:
                best = (end.isoformat(), until)
        return best if best else (None, None)

    def compute(self, did: str, pid: str, truth: dict[str, Any], works_in: set[str]) -> dict[str, Any]:
        now_iso = clock.iso(truth["now"])
        grants = []
        for g in sorted(truth["grants"], key=lambda g: g["grant_id"]):
            if not access.live(g, truth["now"]):
                continue
            if g["grantee_kind"] == "doctor" and g["grantee_id"] == did:
                grants.append({"grant_id": g["grant_id"], "via": "doctor", "sections": g.get("sections"),
                               "until": g["until"]})
            elif g["grantee_kind"] == "clinic" and g["grantee_id"] in works_in:
                grants.append({"grant_id": g["grant_id"], "via": "clinic", "clinic_id": g["grantee_id"],
                               "sections": g.get("sections"), "until": g["until"]})
        obs_day, obs_until = self._observation(did, truth)
        if obs_until is not None and obs_until <= now_iso:
            obs_day = obs_until = None
        visits = sorted(({"booking_id": v["booking_id"], "start_utc": v["start_utc"], "clinic_id": v["clinic_id"],
                          "time_zone": v.get("time_zone")} for v in truth["visits"]
                         if v.get("type") == "booking" and v["doctor_id"] == did and v["patient_id"] == pid
                         and v["status"] in VISIT_STATUSES and v["start_utc"] > now_iso),
                        key=lambda v: (v["start_utc"], v["booking_id"]))[:UPCOMING_KEPT]
        ends = [g["until"] for g in grants] + ([obs_until] if obs_until else [])
        user = truth["user"]
        return {"doctor_id": did, "patient_id": pid, "first_name": user.get("first_name"),
                "last_name": user.get("last_name"), "grants": grants, "observation_end": obs_day,
                "observation_until": obs_until, "visits": visits, "listed_until": max(ends) if ends else None}

    # ------------------------------------------------------------------ the one writer

    def refresh(self, pid: str, doctor_ids: Iterable[str], booking_id: Optional[str] = None,
                only_listed: bool = False) -> int:
        """Recompute the rows of ``pid`` for these doctors; returns how many were written. ``only_listed``
        (a visit's change): a doctor without a listed row has nothing to show it on, and is skipped."""
        from chalicelib.clinics import access as clinic_access

        pending = list(dict.fromkeys(d for d in doctor_ids if d))
        written = 0
        for _ in range(RETRIES):
            seen = {did: store.get_care_row(did, pid) for did in pending}  # versions first, then the truth
            if only_listed:
                seen = {did: row for did, row in seen.items() if row and row.get("listed_until")}
            if not seen:
                return written
            truth = self._truth(pid, booking_id)
            clashed = []
            for did, old in seen.items():
                new = self.compute(did, pid, truth, clinic_access.clinics_of_doctor(did))
                if old is None and not new["listed_until"]:
                    continue  # nothing to show and nothing shown
                if old is not None and all(old.get(k) == new.get(k) for k in CONTENT):
                    continue
                version = int(old["version"]) if old else None
                row = {**new, "version": (version or 0) + 1, "computed_at": clock.iso(truth["now"])}
                if store.put_care_row(row, version):
                    written += 1
                else:
                    clashed.append(did)
            if not clashed:
                return written
            pending = clashed
        raise RuntimeError("my-patients rows kept changing under the refresh; the outbox retries it")

    def grant_changed(self, data: dict[str, Any]) -> int:
        """A grant made or revoked: the grantee doctor's row, or every row of a clinic's doctors."""
        from chalicelib.clinics import access as clinic_access

        if data.get("grantee_kind") == "clinic":
            doctors: Iterable[str] = sorted(clinic_access.doctors_of_clinic(data["grantee_id"]))
        else:
            doctors = [data["grantee_id"]]
        return self.refresh(data["patient_id"], doctors)

    def membership_changed(self, cid: str, did: str) -> int:
        """A doctor joined or is leaving a clinic: the rows of that clinic's live grants, for this doctor."""
        written = 0
        for g in store.grants_to("clinic", cid, clock.iso(clock.now())):
            written += self.refresh(g["patient_id"], [did])
        # rows that held this clinic's grants which have since been revoked are already refreshed by the revocation
        return written

    # ------------------------------------------------------------------ the list

    @staticmethod
    def view(row: dict[str, Any], now_iso: str) -> dict[str, Any]:
        from chalicelib.core.tz import present

        grants = [g for g in row.get("grants") or [] if g["until"] > now_iso]
        grant = None
        if grants:
            opened = set()
            for g in grants:
                opened |= set(g.get("sections") or m.GRANTABLE)
            grant = {"grant_ids": [g["grant_id"] for g in grants],
                     "sections": [s for s in m.GRANTABLE if s in opened], "until": max(g["until"] for g in grants),
                     "via": sorted({g["via"] for g in grants}),
                     **({"clinic_ids": sorted({g["clinic_id"] for g in grants if g.get("clinic_id")})}
                        if any(g.get("clinic_id") for g in grants) else {})}
        obs = row.get("observation_end") if (row.get("observation_until") or "") > now_iso else None
        nxt = next((v for v in row.get("visits") or [] if v["start_utc"] > now_iso), None)
        visit = None
        if nxt:
            start = datetime.fromisoformat(nxt["start_utc"].replace("Z", "+00:00"))
            visit = {"booking_id": nxt["booking_id"], "clinic_id": nxt["clinic_id"],
                     "start": present(start, nxt.get("time_zone") or "UTC")}
        name = {k: row[k] for k in ("first_name", "last_name") if row.get(k)}
        return {"patient_id": row["patient_id"], "name": name, "grant": grant, "observation_end": obs,
                "next_visit": visit}

    def page(self, caller: Any, q: m.Page) -> dict[str, Any]:
        access.require_doctor(caller)
        now_iso = clock.iso(clock.now())
        rows, cursor = store.care_page(caller.user_id, now_iso, q.limit, q.cursor)
        return {"items": [self.view(r, now_iso) for r in rows], "next_cursor": cursor}
