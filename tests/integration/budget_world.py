"""A realistic world for the DynamoDB call budgets (tests/unit/test_call_budgets.py), built once per module.

On top of clinic_setup.world() (made through the API), items are cloned straight into the table with
BatchWriteItem in chunks of 25, copying the shape the code writes (the stores' item builders or an item
the API wrote, read back): so the budgets are measured where the data is as large as in a clinic after
two years, not in an empty table.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Optional

from tests.conftest import PASSWORD, body, jpost, sign_up, signup_payload
from tests.unit.clinic_setup import SERVICE, branch, ok, world

# how much history the world holds
PAST_SHIFTS = 700       # the doctor's past duty shifts, one a night for two years
SESSIONS = 300          # the patient's sessions over the years (the live ones stay few: MAX_SESSIONS)
WAITLIST = 500          # waitlist entries for the doctor (150 of them the patient's)
PAST_BOOKINGS = 300     # the patient's past visits
FUTURE_BOOKINGS = 120   # other patients' visits of the clinic in the next 60 days
MESSAGES = 150          # messages in one chat visit
EXTRA_BRANCHES = 11     # clinic A is a network of 12 branches
QUEUE = 40              # patients waiting in the cardiologist's urgent queue
CARD_PER_SECTION = 20   # entries in each of the five sections of the patient's medical card
CARD_ACCESSES = 150     # the patient's access log (more than a page)
DOCTOR_GRANTS = 150     # patients who opened their card to the doctor (more than a page of "my patients")
DEVICES = 8             # the patient's push devices (phone, tablet, browsers), each on a live session
INBOX = 300             # messages in the patient's inbox, all unread

TZ_OFFSET = timedelta(hours=2)  # Europe/Kaliningrad: UTC+2 all year


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class BudgetExceeded(AssertionError):
    """An operation made more DynamoDB calls than its budget."""


class World:
    def __init__(self, client, outbox, clock, counter) -> None:
        self.client, self.outbox, self.clock, self.counter = client, outbox, clock, counter
        self.measured: list[tuple[str, int, list[str]]] = []
        self._phone = 79120000000
        self.sizes: dict[str, int] = {}

    # ------------------------------------------------------------------ requests

    def call(self, method: str, path: str, payload: Any = None, token: Optional[str] = None,
             headers: Optional[dict] = None, status: int | tuple[int, ...] = 200, label: str = "ok"):
        """One measured request: the counter is reset right before it and read right after."""
        self.counter.reset()
        r = jpost(self.client, path, payload, token=token, headers=headers, method=method)
        calls = list(self.counter.calls)
        self.measured.append((label, len(calls), calls))
        want = status if isinstance(status, tuple) else (status,)
        assert r.status_code in want, (method, path, r.status_code, r.body)
        return r

    def raw(self, method: str, path: str, **kw):
        """One measured request with the raw test client (bodies that are not JSON we build)."""
        self.counter.reset()
        r = getattr(self.client.http, method)(path, **kw)
        calls = list(self.counter.calls)
        self.measured.append(("ok", len(calls), calls))
        return r

    def setup(self, method: str, path: str, payload: Any = None, token: Optional[str] = None,
              status: int = 200, headers: Optional[dict] = None):
        """An unmeasured request that prepares a case."""
        return ok(jpost(self.client, path, payload, token=token, headers=headers, method=method), status)

    # ------------------------------------------------------------------ people

    def phone(self) -> str:
        self._phone += 1
        return f"+{self._phone}"

    def sms_gap(self) -> None:
        """Let the per-phone SMS cooldown pass (the clock only moves forward)."""
        self.clock.advance(seconds=61)

    def mint(self, user_id: str, role: str, factor: str = "totp", step_up: bool = False) -> dict[str, str]:
        """A fresh session of an existing account, written as sign-in writes it, and its tokens."""
        from chalicelib import bootstrap
        from chalicelib.core import clock, db
        from chalicelib.identity import store

        svc = bootstrap.identity()
        now = int(clock.now().timestamp())
        session, refresh = svc._new_session({"user_id": user_id, "role": role}, None, now, factor)
        if step_up:
            session["step_up_until"] = now + 300
            session["step_up_via"] = "code"  # as a verified step-up code grants it
        db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(store.session_item(session)))
        access, _ = svc._issue(user_id, role, session["session_id"], now)
        return {"token": access, "refresh": refresh, "session_id": session["session_id"]}

    def new_user(self, role: str = "patient") -> dict[str, Any]:
        """An account signed up through the API (no second factor enrolled)."""
        phone = self.phone()
        r = ok(jpost(self.client, "/auth/signup", signup_payload(phone, role=role)), 202)
        tokens = ok(jpost(self.client, "/auth/signup/verify",
                          {"challenge_id": r["challenge_id"], "code": self.outbox.last_code(phone)}), 201)
        me = ok(jpost(self.client, "/me", token=tokens["access_token"], method="get"))
        return {"user_id": me["user_id"], "phone": phone, "token": tokens["access_token"],
                "refresh": tokens["refresh_token"], "role": role}

    def tok(self, who: str, **kw) -> str:
        """A fresh access token of one of the world's people (sessions never outlive a test)."""
        p = getattr(self, who)
        return self.mint(p["user_id"], p["role"], "totp" if p["role"] != "patient" else "sms", **kw)["token"]

    # ------------------------------------------------------------------ clock

    def at(self, moment: datetime, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with the clock at ``moment``, then put the clock back."""
        saved = self.clock.now()
        self.clock.set(moment)
        try:
            return fn()
        finally:
            self.clock.set(saved)

    # ------------------------------------------------------------------ bookings

    def free(self, service_id: Optional[str] = None) -> str:
        """The next unused slot start of a service (the doctor's weekly hours, walked forward once), so a
        case need not ask the slots endpoint, which reads the whole schedule, for every booking it makes."""
        kind = {self.video: "video", self.chat: "chat"}.get(service_id or self.w["service_id"], "in_person")
        return next(self._slots[kind])

    def book(self, token: Optional[str] = None, service_id: Optional[str] = None, status: int = 201) -> dict:
        start = self.free(service_id)
        return self.setup("post", "/bookings", {"clinic_id": self.cid, "service_id": service_id or self.w["service_id"],
                                                 "doctor_id": self.did, "start": start},
                          token=token or self.tok("patient"), status=status)


def _starts(first_day: date, minutes: int, weeks: int = 8):
    """Slot starts of a weekly 09:00-13:00 (Kaliningrad) block from ``first_day`` on, as UTC strings."""
    for week in range(weeks):
        day = first_day + timedelta(days=7 * week)
        t = datetime(day.year, day.month, day.day, 9, 0, tzinfo=timezone.utc) - TZ_OFFSET
        while t + timedelta(minutes=minutes) <= datetime(day.year, day.month, day.day, 13, 0,
                                                         tzinfo=timezone.utc) - TZ_OFFSET:
            yield iso(t)
            t += timedelta(minutes=minutes)


def batch_put(items: list[dict[str, Any]]) -> None:
    """Items straight into the table, 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed."""
    from chalicelib.core import db

    for at in range(0, len(items), 25):
        request = {db.table_name(): [{"PutRequest": {"Item": db.to_item(i)}} for i in items[at:at + 25]]}
        while request:
            resp = db.ddb().batch_write_item(RequestItems=request)
            request = resp.get("UnprocessedItems") or {}


def build(client, outbox, clock, counter, stripe) -> World:
    from chalicelib.booking import store as bstore
    from chalicelib.clinics import store as cstore
    from chalicelib.core import db
    from chalicelib.core.ids import new_id
    from chalicelib.identity import store as istore

    W = World(client, outbox, clock, counter)
    W.stripe = stripe
    w = world(client, outbox, clock)
    W.w = w
    W._slots = {"in_person": _starts(date(2026, 11, 30), 40), "chat": _starts(date(2026, 11, 25), 30),
                "video": _starts(date(2026, 11, 26), 30)}
    W.cid, W.bid, W.did = w["a"]["clinic_id"], w["a"]["branch_id"], w["doctor"]["user_id"]
    W.admin_a = {**w["admin_a"], "role": "clinic_admin"}
    W.admin_b = {**w["admin_b"], "role": "clinic_admin"}
    W.doctor = {**w["doctor"], "role": "doctor"}
    W.platform = {**w["platform"], "role": "platform_admin"}
    me = ok(jpost(client, "/me", token=w["patient"]["token"], method="get"))
    W.patient = {**w["patient"], "user_id": me["user_id"], "role": "patient"}
    a_tok = W.admin_a["token"]
    C = f"/clinics/{W.cid}"

    # payouts on for clinic A (Stripe's Connect through the local Stripe-shaped server), then a
    # service with prepayment (held bookings), a video and a chat service with their weekly hours
    from local.stripe_fake import sign

    acct = W.setup("post", f"{C}/payouts/onboarding", {}, token=a_tok, status=201)["account_id"]
    payload = json.dumps(W.stripe.complete_onboarding(acct)).encode()
    r = client.http.post("/webhooks/stripe", body=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload, "whsec_test_secret")})
    assert r.status_code == 200 and body(r) == {"handled": True}, r.body
    base = {**SERVICE, "resource_kinds": [], "specialty": "cardiologist"}
    W.prepaid = W.setup("post", f"{C}/services", {**base, "name": {"ru": "Приём с предоплатой", "en": "Prepaid"},
                                                    "prepayment": {"kind": "percent", "percent": 30}},
                        token=a_tok, status=201)["service_id"]
    W.video = W.setup("post", f"{C}/services", {**base, "name": {"ru": "Видео", "en": "Video"}, "modality": "video",
                                                  "duration_minutes": 30}, token=a_tok, status=201)["service_id"]
    W.chat = W.setup("post", f"{C}/services", {**base, "name": {"ru": "Чат", "en": "Chat"}, "modality": "chat",
                                                 "duration_minutes": 30}, token=a_tok, status=201)["service_id"]
    for weekday, modality in (("wed", "chat"), ("thu", "video")):
        W.setup("post", f"{C}/doctors/{W.did}/templates", {"branch_id": W.bid, "modality": modality,
                                                           "weekday": weekday, "start": "09:00", "end": "13:00"},
                token=a_tok, status=201)

    # current duty shifts through the API: one now (Tue 24 Nov, 07:00-19:00 local) and the next nights
    shift = {"branch_id": W.bid, "specialty": "cardiologist"}
    W.setup("post", f"{C}/doctors/{W.did}/duty-shifts", {**shift, "starts_at": "2026-11-24T07:00",
                                                         "ends_at": "2026-11-24T19:00"}, token=a_tok, status=201)
    for d in ("2026-11-27", "2026-11-28", "2026-11-29"):
        W.setup("post", f"{C}/doctors/{W.did}/duty-shifts", {**shift, "starts_at": f"{d}T20:00",
                                                             "ends_at": f"{(date.fromisoformat(d) + timedelta(days=1))}T06:00"},
                token=a_tok, status=201)
    sample = [i for i in db.query_prefix(cstore.doctor_pk(W.did), "DUTY#")][0]
    W.past_shifts = shift_clones(sample, W.did, PAST_SHIFTS, date(2026, 11, 23))
    batch_put(W.past_shifts)

    # sessions: the patient's history (revoked ones are out of the user index, as revocation leaves them)
    # and nine more live ones; cloned from the session sign-up wrote
    live = db.query_prefix(istore.user_pk(W.patient["user_id"]), "SESSION#", index="GSI1")[0]
    W.patient_sessions = session_clones(live, SESSIONS - 1 - 9, 9, int(clock.now().timestamp()))
    batch_put(W.patient_sessions)

    # bookings: one through the API (the patient's, with its locks), then clones of it
    W.visit = W.book(W.patient["token"])
    sample = db.get(bstore.booking_pk(W.visit["booking_id"]), "BOOKING")
    clones = booking_clones(sample, W.patient["user_id"], PAST_BOOKINGS, FUTURE_BOOKINGS)
    batch_put(clones)

    # waitlist: 500 entries for the doctor, 150 of them the patient's
    wl = []
    for i in range(WAITLIST):
        pid = W.patient["user_id"] if i < 150 else new_id()
        d_from = date(2026, 11, 25) + timedelta(days=i % 40)
        wl.append(bstore.waitlist_item({
            "waitlist_id": new_id(), "patient_id": pid, "doctor_id": W.did, "clinic_id": W.cid,
            "service_id": W.w["service_id"], "date_from": d_from.isoformat(),
            "date_to": (d_from + timedelta(days=14)).isoformat(),
            "created_at": iso(datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(minutes=7 * i))}))
    batch_put(wl)

    # a chat visit (Wednesday) with a long conversation
    W.chat_visit = W.book(W.patient["token"], service_id=W.chat)
    msgs = []
    for i in range(MESSAGES):
        author, role = ((W.patient["user_id"], "patient") if i % 2 else (W.did, "doctor"))
        msgs.append(bstore.message_item(W.chat_visit["booking_id"], new_id(), author, role,
                                        f"message {i}: " + "how are you feeling today? " * 4,
                                        iso(clock.now() - timedelta(minutes=MESSAGES - i))))
    batch_put(msgs)

    # clinic A, a network: more branches, listed in the catalogue like the first
    first = db.get(cstore.clinic_pk(W.cid), db.key("BRANCH", W.bid))
    more = []
    for i in range(EXTRA_BRANCHES):
        bid = new_id()
        more.append({**first, "SK": db.key("BRANCH", bid), "branch_id": bid, "name": {"ru": f"Филиал {i}",
                                                                                       "en": f"Branch {i}"},
                     "GSI1SK": f"CLINIC#{W.cid}#BRANCH#{bid}", "resources": []})
    batch_put(more)

    # the urgent queue: patients waiting for a cardiologist
    queue = []
    for i in range(QUEUE):
        entry = {"entry_id": new_id(), "specialty": "cardiologist", "patient_id": new_id(), "modality": "video",
                 "joined_at": iso(clock.now() - timedelta(minutes=QUEUE - i)),
                 "expires_at": int(clock.now().timestamp()) + 7 * 86400}
        queue.append(bstore.urgent_entry_item(entry))  # each with the patient's one place, as joining writes
        queue.append(bstore.urgent_pointer_item(entry["patient_id"], "cardiologist", entry["entry_id"]))
    batch_put(queue)

    # notify: the patient's devices on live sessions, and a long inbox
    batch_put(notify_clones(W.patient["user_id"], [x for x in W.patient_sessions if x.get("GSI1PK")],
                            clock.now()))

    W.sizes = {"devices of the patient": DEVICES, "inbox messages of the patient": INBOX,
               "past duty shifts": PAST_SHIFTS, "patient sessions": SESSIONS, "waitlist entries": WAITLIST,
               "past bookings of the patient": PAST_BOOKINGS, "future bookings of the clinic": FUTURE_BOOKINGS,
               "chat messages": MESSAGES, "branches of clinic A": EXTRA_BRANCHES + 1, "urgent queue": QUEUE}
    records_card(W)
    return W


def records_card(W: World) -> None:
    """The patient's medical card, 20 entries a section written through the service (sealed as in use), a
    grant of two sections to the doctor and one of all to clinic A (so a doctor's read asks which clinics they
    work in); 150 access-log items; 150 other patients' grants to the doctor."""
    from chalicelib import bootstrap
    from chalicelib.core import clock
    from chalicelib.core.ids import new_id
    from chalicelib.core.web import Caller
    from chalicelib.records import models as rm
    from chalicelib.records import store as rstore
    from tests.unit.records_world import ENTRIES

    svc = bootstrap.records()
    me = Caller(W.patient["user_id"], "patient", "budget-world")
    W.card_entries = {}
    for section, entry in ENTRIES.items():
        for i in range(CARD_PER_SECTION):
            data = {**entry, ("text" if section == "notes" else "substance" if section == "allergies"
                              else "vaccine" if section == "vaccinations" else "name"): f"entry {i}"}
            made = svc.add_entry(me, section, rm.ENTRY_MODELS[section].model_validate(data))
            W.card_entries.setdefault(section, []).append(made["entry_id"])
    until = clock.now() + timedelta(days=90)
    W.card_grant = svc.grant(me, rm.GrantIn(doctor_id=W.did, sections=["allergies", "medications"], until=until))
    svc.grant(me, rm.GrantIn(clinic_id=W.cid, until=until))
    now = clock.now()
    gid = W.card_grant["grant_id"]
    batch_put([rstore.access_item({"access_id": new_id(), "patient_id": W.patient["user_id"],
                                   "at": iso(now - timedelta(minutes=i)), "actor_id": W.did, "actor_role": "doctor",
                                   "action": "read", "sections": ["allergies"], "grant_ids": [gid]})
               for i in range(CARD_ACCESSES)])
    batch_put([rstore.grant_item({"grant_id": new_id(), "patient_id": new_id(), "grantee_kind": "doctor",
                                  "grantee_id": W.did, "sections": None, "until": iso(until), "status": "active",
                                  "created_at": iso(now)}) for _ in range(DOCTOR_GRANTS)])
    # "my patients": the rows the grants' handler keeps (the patient's computed, the others cloned), and as many
    # rows whose grants ended, which the page's key range leaves out
    svc.care.refresh(W.patient["user_id"], [W.did])

    def row(pid: str, ends: str) -> dict[str, Any]:
        return rstore.care_row_item({"doctor_id": W.did, "patient_id": pid, "first_name": "Ivan", "last_name": "Petrov",
                                     "grants": [{"grant_id": new_id(), "via": "doctor", "sections": None,
                                                 "until": ends}], "observation_end": None, "observation_until": None,
                                     "visits": [], "listed_until": ends, "version": 1, "computed_at": iso(now)})
    batch_put([row(new_id(), iso(until)) for _ in range(DOCTOR_GRANTS)] +
              [row(new_id(), iso(now - timedelta(days=1 + i))) for i in range(DOCTOR_GRANTS)])
    W.sizes.update({"card entries of the patient": 5 * CARD_PER_SECTION, "card access log": CARD_ACCESSES,
                    "grants to the doctor": DOCTOR_GRANTS + 1, "my patients rows (half ended)": 2 * DOCTOR_GRANTS + 1})


def shift_clones(sample: dict[str, Any], did: str, n: int, last_day: date) -> list[dict[str, Any]]:
    """Past night shifts (20:00-06:00 local) on each of the ``n`` days before ``last_day``, shaped like
    ``sample`` (an item the API wrote), each with its own id and its roster keys."""
    from chalicelib.clinics import store as cstore
    from chalicelib.core.ids import new_id

    out = []
    for i in range(n):
        day = last_day - timedelta(days=i + 1)
        start_local = datetime(day.year, day.month, day.day, 20, 0)
        end_local = start_local + timedelta(hours=10)
        start_utc = (start_local - TZ_OFFSET).replace(tzinfo=timezone.utc)
        end_utc = (end_local - TZ_OFFSET).replace(tzinfo=timezone.utc)
        sid = new_id()
        item = {**sample, "SK": cstore.dated_sk("DUTY", iso(end_utc), sid), "item_id": sid, "doctor_id": did,
                "starts_at": start_local.strftime("%Y-%m-%dT%H:%M"), "ends_at": end_local.strftime("%Y-%m-%dT%H:%M"),
                "starts_at_utc": iso(start_utc), "ends_at_utc": iso(end_utc),
                "created_at": int(start_utc.timestamp()) - 30 * 86400,
                "expires_at": int(end_utc.timestamp()) + cstore.KEEP_HISTORY_DAYS * 86400,
                "GSI3SK": f"{iso(end_utc)}#{sid}"}
        # the shift and its id reference, exactly as the store writes them (clinics.store.put_schedule_item)
        out += [item, cstore._ref_item(item)]
    return out


def session_clones(sample: dict[str, Any], revoked: int, live: int, now: int) -> list[dict[str, Any]]:
    from chalicelib.core import db
    from chalicelib.core.ids import new_id
    from chalicelib.identity import store

    out = []
    for i in range(revoked + live):
        sid = new_id()
        s = {k: v for k, v in sample.items() if k not in ("PK", "SK", "GSI1PK", "GSI1SK")}
        s.update(session_id=sid, created_at=now - (i + 1) * 3 * 86400, last_used_at=now - (i + 1) * 3 * 86400)
        if i < revoked:
            item = {"PK": store.session_pk(sid), "SK": "SESSION", "type": "session", **s, "revoked": True,
                    "revoked_reason": "replaced", "revoked_at": s["created_at"] + 86400}
        else:
            s.update(last_used_at=now - 3600, idle_expiry=now + 20 * 86400)
            item = store.session_item(s)
        out.append(item)
    assert db  # keys come from the identity store's builders
    return out


def notify_clones(uid: str, live_sessions: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The patient's devices (each on one of its live sessions) and inbox, in the notify store's shape."""
    import secrets

    from chalicelib.core import db
    from chalicelib.core.ids import new_id
    from chalicelib.notify import store

    out: list[dict[str, Any]] = []
    for i, session in enumerate(live_sessions[:DEVICES]):
        token = secrets.token_urlsafe(16) + ":APA91b" + secrets.token_urlsafe(100)
        did = store.device_id(token)
        at = iso(now - timedelta(days=i))
        out.append({"PK": store.user_pk(uid), "SK": db.key("DEVICE", did), "type": "device", "device_id": did,
                    "user_id": uid, "token": token, "platform": ("ios", "android", "web")[i % 3],
                    "app_version": "3.2.1", "language": "ru", "time_zone": "Europe/Kaliningrad",
                    "session_id": session["session_id"], "registered_at": at, "refreshed_at": at,
                    "expires_at": int(now.timestamp()) + 270 * 86400})
        out.append({"PK": db.key("FCMTOKEN", did), "SK": "TOKEN", "type": "fcm_token", "user_id": uid,
                    "expires_at": int(now.timestamp()) + 270 * 86400})
    for i in range(INBOX):
        mid = new_id()
        out.append({"PK": store.user_pk(uid), "SK": db.key("INBOX", mid), "type": "inbox_message", "read": False,
                    "message_id": mid, "kind": "recall", "category": "recall", "title": "Time for a visit",
                    "text": "It is time to book your next visit. Choose a time in the app.",
                    "created_at": iso(now - timedelta(hours=INBOX - i)),
                    "expires_at": int(now.timestamp()) + 86400 * 365})
    out.append({"PK": store.user_pk(uid), "SK": store.STATE_SK, "type": "inbox_state", "unread": INBOX})
    return out


def booking_clones(sample: dict[str, Any], patient_id: str, past: int, future: int) -> list[dict[str, Any]]:
    """The patient's past visits (every two or three days back over two years, completed) and other patients'
    future visits (weekends, when the doctor's weekly hours do not run), built with the booking store's
    item builder from a booking the API wrote. Locks are left out: these bookings are only read."""
    from chalicelib.booking import store
    from chalicelib.core.ids import new_id

    base = {k: v for k, v in sample.items() if k not in ("PK", "SK", "type", "resource_ids") and not k.startswith("GSI")}
    start0 = datetime.fromisoformat(sample["start_utc"].replace("Z", "+00:00"))
    out = []
    for i in range(past):
        s = start0 - timedelta(days=7 + i * 2, minutes=(i % 3) * 40)
        b = {**base, "booking_id": new_id(), "start_utc": iso(s), "end_utc": iso(s + timedelta(minutes=40)),
             "local_day": (s + TZ_OFFSET).date().isoformat(), "status": "completed", "locks": []}
        out.append(store.booking_item(b))
    sat = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
    for i in range(future):
        s = sat + timedelta(days=7 * (i // 16) + (i // 8) % 2, minutes=40 * (i % 8))
        b = {**base, "booking_id": new_id(), "patient_id": new_id(), "start_utc": iso(s),
             "end_utc": iso(s + timedelta(minutes=40)), "local_day": (s + TZ_OFFSET).date().isoformat(),
             "status": "confirmed", "locks": []}
        out.append(store.booking_item(b))
    return out


__all__ = ["World", "build", "batch_put", "shift_clones", "BudgetExceeded", "PASSWORD", "sign_up", "branch"]
