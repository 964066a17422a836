"""The one notification service: devices, the inbox, and sending a kind of message to a person.

``send(user_id, kind, key, params)`` is what every feature's event handler and every job calls. The
``key`` names the message once and for all (``<event id>:<kind>``, ``reminder:<booking>:<hours>``):
the send record written with the inbox message makes a second run with the same key send nothing.

Delivery: the inbox always has the message (written first, in one transaction with the send record
and the unread count). In a deployed stage the message's key then goes on the notifications queue and
its consumer delivers it (``deliver``; notify/delivery.py: retries with backoff, a dead-letter queue);
without a queue it is delivered at once, here. Either way: push to the person's live devices in one
multicast; tokens FCM refuses for good are removed at once. When nothing was pushed (no device, or
every push failed) a kind that must arrive goes by SMS; any other kind whose push failed for a passing
reason raises, so the queue (or the outbox) tries again later and, after its last try, dead-letters it:
the inbox still has it.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Optional

from chalicelib.core import clock, db, log
from chalicelib.core.errors import conflict, not_found
from chalicelib.core.ids import new_id
from chalicelib.notify import access, store
from chalicelib.notify import models as m
from chalicelib.notify.templates import CATEGORIES, LIVE_VISIT, TEMPLATES, render


class PushUnavailable(Exception):
    """Every push of a message failed for a passing reason; the outbox retries the event."""

    def __init__(self, retry_after: Optional[int]) -> None:
        super().__init__("push unavailable")
        self.retry_after = retry_after


# Devices one person keeps (phones, tablets, browsers); past it, the least recently refreshed go.
MAX_DEVICES = 20
# Longer than one delivery can take (one multicast and one SMS, each with a 10 s timeout), shorter than
# the outbox's lease, so a sender that died never blocks the retry.
CLAIM_SECONDS = 45


def _iso(dt: datetime) -> str:
    return clock.iso(dt)


class NotifyService:
    def __init__(self, settings: Any, push: Any, sms: Any, queue: Any = None) -> None:
        self.settings = settings
        self.push = push
        self.sms = sms
        self.queue = queue  # delivery.SqsDeliveryQueue, or None: deliver in this process

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Queue what is sent inside in batches of ten, all on the queue when the block ends (a job sending
        hundreds). Without a queue it changes nothing. A failure to queue raises at the end of the block: the
        job keeps what it was sending (its due items) for the next run."""
        if self.queue is None:
            yield
            return
        self.queue.start_batch()
        try:
            yield
        finally:
            self.queue.flush(stop=True)

    def _now(self) -> datetime:
        return clock.now()

    # ------------------------------------------------------------------ devices

    def register_device(self, caller: Any, body: m.DeviceIn) -> tuple[m.DeviceView, bool]:
        """Register or refresh this session's device. The same token again refreshes its timestamp; a new
        token from the same session replaces the old one (FCM rotated it); a token another account held
        on this phone moves to this one."""
        uid = access.owner(caller)
        now = self._now()
        did = store.device_id(body.token)
        mine = store.devices(uid)
        existing = next((d for d in mine if d["device_id"] == did), None)
        owner = store.token_owner(did)
        device = {
            "device_id": did, "user_id": uid, "token": body.token, "platform": body.platform,
            "app_version": body.app_version, "language": body.language, "time_zone": body.time_zone,
            "session_id": caller.session_id,
            "registered_at": existing["registered_at"] if existing else _iso(now), "refreshed_at": _iso(now),
            "expires_at": int(now.timestamp()) + self.settings.device_stale_days * 86400,
        }
        tx = db.Tx()
        store.tx_put_device(tx, device, owner["user_id"] if owner else None)
        try:
            tx.commit()
        except db.TxCancelled:
            raise conflict("version_conflict", "this device was registered at the same moment; try again") from None
        replaced = [d["device_id"] for d in mine if d["session_id"] == caller.session_id and d["device_id"] != did]
        if replaced:
            store.delete_devices(uid, replaced)
        if len(mine) - len(replaced) >= MAX_DEVICES:  # many sign-ins and no send since: tidy, oldest go first
            live = self.live_devices(uid)
            extra = sorted((d for d in live if d["device_id"] != did), key=lambda d: d["refreshed_at"])
            store.delete_devices(uid, [d["device_id"] for d in extra[:max(0, len(live) - MAX_DEVICES)]])
        log.event("notify.device_registered", user_id=uid, device_id=did, platform=body.platform,
                  refreshed=existing is not None)
        return self._view(device, caller), existing is None

    @staticmethod
    def _view(d: dict[str, Any], caller: Any) -> m.DeviceView:
        return m.DeviceView(device_id=d["device_id"], platform=d["platform"], app_version=d["app_version"],
                            language=d["language"], time_zone=d["time_zone"], registered_at=d["registered_at"],
                            refreshed_at=d["refreshed_at"], current=d["session_id"] == caller.session_id)

    def list_devices(self, caller: Any) -> dict[str, Any]:
        devices = self.live_devices(access.owner(caller))
        return {"items": [self._view(d, caller).model_dump() for d in devices]}

    def remove_device(self, caller: Any, did: str) -> None:
        uid = access.owner(caller)
        did = access.device_id(did)
        if not any(d["device_id"] == did for d in store.devices(uid)):
            raise not_found()
        store.delete_devices(uid, [did])
        log.event("notify.device_removed", user_id=uid, device_id=did, reason="user")

    def live_devices(self, uid: str) -> list[dict[str, Any]]:
        """The devices a push may go to. Devices whose session someone ended (logout, revoked) or whose token
        was not refreshed for ``device_stale_days`` are removed on the way (TTL removes them too, late).
        Identity writes no event at logout today, so this lookup (one BatchGetItem of the sessions) is how
        a logged-out device stops receiving anything."""
        from chalicelib.identity import store as identity_store

        devices = store.devices(uid)
        if not devices:
            return []
        now = self._now()
        stale_before = _iso(now - timedelta(days=self.settings.device_stale_days))
        # the sessions and the tokens' owner items in one BatchGetItem: a token another account registered
        # since belongs to that account only, even if this account's device item outlived the move
        found = db.batch_get([(identity_store.session_pk(d["session_id"]), "SESSION") for d in devices]
                             + [(db.key("FCMTOKEN", d["device_id"]), "TOKEN") for d in devices])
        sessions = {s["session_id"]: s for s in found if s.get("type") != "fcm_token"}
        owners = {i["PK"].split("#", 1)[1]: i.get("user_id") for i in found if i.get("type") == "fcm_token"}
        live, dead = [], []
        for d in devices:
            s = sessions.get(d["session_id"])
            if owners.get(d["device_id"]) not in (None, uid):
                dead.append(d["device_id"])  # the token moved to another account: never push it from here
                continue
            # A session someone ended (logout, revoked, password changed, replaced by a new login) ends
            # its device; one that merely lapsed does not (a neutral reminder still reaches a patient who
            # has not opened the app for a while; the deep link asks them to sign in).
            ended = s is None or s.get("user_id") != uid or (s.get("revoked") and s.get("revoked_reason") != "expired")
            if not ended and d["refreshed_at"] > stale_before:
                live.append(d)
            else:
                dead.append(d["device_id"])
        if dead:
            store.delete_devices(uid, dead)
            log.event("notify.devices_pruned", user_id=uid, count=len(dead))
        return live

    # ------------------------------------------------------------------ the inbox

    def inbox(self, caller: Any, q: m.InboxQuery) -> m.InboxPage:
        uid = access.owner(caller)
        state = store.inbox_state(uid)
        items, cursor = store.inbox_page(uid, q.limit, q.cursor)
        watermark = state.get("read_before") or ""
        return m.InboxPage(items=[self._message(i, watermark) for i in items], unread=int(state.get("unread") or 0),
                           next_cursor=cursor)

    @staticmethod
    def _message(i: dict[str, Any], watermark: str) -> m.InboxMessage:
        return m.InboxMessage(message_id=i["message_id"], kind=i["kind"], category=i["category"], title=i["title"],
                              text=i["text"], link=i.get("link"), created_at=i["created_at"],
                              read=bool(i.get("read")) or i["message_id"] <= watermark)

    def mark_read(self, caller: Any, mid: str) -> dict[str, int]:
        uid = access.owner(caller)
        mid = access.message_id(mid)
        for _ in range(8):
            state = store.inbox_state(uid)
            item = db.get(store.user_pk(uid), db.key("INBOX", mid))
            if item is None:
                raise not_found()
            if item.get("read") or mid <= (state.get("read_before") or ""):
                return {"unread": int(state.get("unread") or 0)}
            try:
                store.mark_read(uid, mid, state)
                return {"unread": int(state.get("unread") or 0) - 1}
            except db.TxCancelled:
                continue  # a new message or a mark-all meanwhile: read again
        raise conflict("version_conflict", "the inbox changed meanwhile; try again")

    def mark_all_read(self, caller: Any) -> dict[str, int]:
        uid = access.owner(caller)
        for _ in range(20):  # any change to the inbox meanwhile (a message, a read) makes it read again
            state = store.inbox_state(uid)
            latest = store.latest_message_id(uid)
            if latest is None:
                return {"unread": 0}
            try:
                store.mark_all_read(uid, max(latest, state.get("read_before") or ""), state)
                return {"unread": 0}
            except Exception as exc:
                if not db.is_condition_failure(exc):
                    raise
        raise conflict("version_conflict", "the inbox changed meanwhile; try again")

    # ------------------------------------------------------------------ reminders

    def reminder_offsets(self) -> list[int]:
        return sorted({int(h) for h in self.settings.reminder_hours.split(",") if h.strip()}, reverse=True)

    def plan_reminders(self, booking: dict[str, Any]) -> int:
        """The reminders of a visit at the clinic's offsets (its ``reminder_hours`` policy; else the default)."""
        from chalicelib.clinics import access as clinic_access
        from chalicelib.notify import reminders

        own = clinic_access.policy(booking.get("clinic_id") or "", "reminder_hours", None)
        offsets = sorted({int(h) for h in own}, reverse=True) if own is not None else self.reminder_offsets()
        return reminders.schedule(booking, offsets)

    def send_due_reminders(self, now: datetime) -> dict[str, int]:
        from chalicelib.notify import reminders

        return reminders.run(self, now)

    # ------------------------------------------------------------------ care messages (preparation, recall, follow-up)

    def plan_preparation(self, booking_id: str) -> bool:
        from chalicelib.booking import store as booking_store
        from chalicelib.notify import care

        b = booking_store.get_booking(booking_id)
        return bool(b and b.get("status") in ("held", "confirmed") and care.plan_preparation(b))

    def plan_recall(self, visit: dict[str, Any]) -> bool:
        from chalicelib.clinics import store as clinic_store
        from chalicelib.notify import care

        svc = db.get(clinic_store.clinic_pk(visit["clinic_id"]), db.key("SERVICE", visit["service_id"])) or {}
        return care.plan_recall(visit, svc.get("recall_after_days"))

    def plan_follow_up(self, data: dict[str, Any]) -> bool:
        from chalicelib.booking import store as booking_store
        from chalicelib.notify import care

        b = booking_store.get_booking(data["booking_id"])
        if not b:
            return False
        return care.plan_follow_up(b, data.get("follow_up_date"), data.get("observation_months"))

    def send_due_care(self, now: datetime) -> dict[str, int]:
        from chalicelib.notify import care

        return care.run(self, now)

    # ------------------------------------------------------------------ sending

    def tell_owner(self, event_id: str, data: dict[str, Any]) -> str:
        """Identity's owner notices (limits hit, a phone change under way): a security notice, so by SMS to
        the phone the event names (the old one during a phone change), in the owner's language, once per
        event, and a copy in the inbox."""
        from chalicelib.core.sms import text as sms_text

        extra = {"ending": data["ending"]} if "ending" in data else {}
        title = {"ru": TEMPLATES["security_notice"].ru[0], "en": TEMPLATES["security_notice"].en[0]}
        outcome = self.send(data["user_id"], "security_notice", f"{event_id}:owner_notice", sms_to=data.get("phone"),
                            text_of=lambda lang: (title["ru" if lang == "ru" else "en"],
                                                  sms_text(data["notice"], lang, **extra)))
        if outcome != "duplicate":
            log.event("account.owner_told", user_id=data["user_id"], notice=data["notice"])
        return outcome

    def send(self, user_id: str, kind: str, key: str, params: Optional[dict[str, Any]] = None,
             link: Optional[str] = None, release: bool = False, sms_to: Optional[str] = None,
             text_of: Optional[Callable[[str], tuple[str, str]]] = None) -> str:
        """Tell a person something, once per ``key``. Returns the channel it went by ('push', 'sms',
        'inbox'), 'held' (quiet hours: the held-messages job sends it in the morning), 'queued' (the
        notifications queue's consumer delivers it) or 'duplicate'. Raises ``PushUnavailable`` (or the SMS
        gateway's error) to be retried. Security notices (``sms_to``/``text_of``) are always sent here."""
        from chalicelib.identity import store as identity_store

        template = TEMPLATES[kind]
        params = {k: params[k] for k in ("start_utc", "time_zone", "amount", "currency")
                  if params and params.get(k) is not None}
        record = store.send_record(key)
        if record and record.get("status") == "delivered":
            return "duplicate"
        user = identity_store.get_user(user_id)
        if not user:
            return "inbox"  # the account is gone: nobody to tell
        lang = user.get("language") or "ru"
        title, text = text_of(lang) if text_of else render(kind, lang, params)
        now = self._now()
        if record is None:
            for attempt in range(5):
                try:
                    created = store.create_message(
                        key, {"message_id": new_id(), "user_id": user_id, "kind": kind, "status": "pending",
                              "created_at": _iso(now), "key": key, "params": params, "link": link,
                              "title": title, "text": text},
                        {"kind": kind, "category": template.category, "title": title, "text": text,
                         "link": link, "created_at": _iso(now)}, int(now.timestamp()))
                    break
                except store.PassedByMarkAll:
                    if attempt == 4:
                        raise  # the outbox or the job tries again later
            if not created:
                log.event("notify.duplicate_create", kind=kind)
        if self.queue is not None and sms_to is None and text_of is None:
            self.queue.enqueue(key, release)  # the queue's consumer delivers it (deliver), retries, dead-letters
            return "queued"
        claimed = store.claim(key, _iso(now), _iso(now + timedelta(seconds=CLAIM_SECONDS)))
        if claimed is None:
            return "duplicate"  # delivered meanwhile, or another sender is delivering it now
        return self._deliver_claimed(claimed, user, title, text, release, sms_to)

    def deliver(self, key: str, release: bool = False) -> str:
        """Deliver an accepted message by its key (the notifications queue's consumer): the send record says
        to whom and what; 'duplicate' when it was delivered already or another sender holds it (a message on
        the queue twice, a consumer fed the same batch twice). Raises, like ``send``, to be retried."""
        from chalicelib.identity import store as identity_store

        now = self._now()
        claimed = store.claim(key, _iso(now), _iso(now + timedelta(seconds=CLAIM_SECONDS)))
        if claimed is None:
            return "duplicate"
        title, text, user = claimed.get("title"), claimed.get("text"), None
        if title is None or text is None:  # a record from before texts were kept with it: render them again
            user = identity_store.get_user(claimed["user_id"])
            if not user:
                store.mark_delivered(key, "nobody", _iso(now))  # the account is gone: nobody to tell
                return "inbox"
            title, text = render(claimed["kind"], user.get("language") or "ru", claimed.get("params") or {})
        return self._deliver_claimed(claimed, user, title, text, release, None)

    def _deliver_claimed(self, claimed: dict[str, Any], user: Optional[dict[str, Any]], title: str, text: str,
                         release: bool, sms_to: Optional[str]) -> str:
        """Push, text or hold a message this sender has claimed; marked delivered, or given back on failure.
        ``user`` (the profile) is read here only when an SMS needs its phone."""
        from chalicelib.identity import store as identity_store

        key, kind, mid, user_id = claimed["key"], claimed["kind"], claimed["message_id"], claimed["user_id"]
        profile: list[Optional[dict[str, Any]]] = [user]

        def phone() -> Optional[str]:
            found = profile[0]
            if found is None:
                found = profile[0] = identity_store.get_user(user_id) or {}
            return found.get("phone")

        template = TEMPLATES[kind]
        params, link = claimed.get("params") or {}, claimed.get("link")
        now = self._now()
        try:
            prefs = self.preferences_of(user_id)
            devices = self.live_devices(user_id)
            if not template.urgent and not release:
                until = self._quiet_until(prefs, devices, params, now)
                if until is not None:
                    store.hold(key, _iso(until))
                    log.event("notify.held", user_id=user_id, kind=kind, message_id=mid, until=_iso(until))
                    return "held"
            if sms_to is not None or kind == "security_notice":
                self.sms.send(sms_to or phone(), text)  # security notices keep SMS as their channel
                channel = "sms"
            else:
                channel = self._deliver(user_id, phone, kind, mid, title, text, link, devices,
                                        prefs[template.category])
        except Exception:
            store.release(key)
            raise
        store.mark_delivered(key, channel, _iso(self._now()))
        log.event("notify.sent", user_id=user_id, kind=kind, message_id=mid, channel=channel)
        _metric("sent")
        return channel

    def _deliver(self, uid: str, phone: Callable[[], Optional[str]], kind: str, mid: str, title: str, text: str,
                 link: Optional[str], devices: list[dict[str, Any]], channels: dict[str, bool]) -> str:
        template = TEMPLATES[kind]
        retry_after: Optional[int] = None
        failed_for_now = False
        if devices and channels["push"]:
            data = {"message_id": mid, "kind": kind, **({"link": link} if link else {})}
            results = self.push.send([d["token"] for d in devices], title, text, data)
            gone = [d["device_id"] for d, r in zip(devices, results, strict=True) if r.outcome == "invalid"]
            if gone:
                store.delete_devices(uid, gone)
                log.event("notify.devices_removed", user_id=uid, count=len(gone),
                          reasons=sorted({r.reason for r in results if r.outcome == "invalid"}))
            if any(r.outcome == "sent" for r in results):
                return "push"
            waits = [r.retry_after for r in results if r.outcome == "retry" and r.retry_after]
            retry_after = max(waits) if waits else None
            failed_for_now = any(r.outcome == "retry" for r in results)
        # SMS when nothing was pushed: for what must arrive, or for a category whose only channel is SMS
        sms_only = channels["sms"] and not channels["push"]
        if (template.must_arrive or sms_only) and channels["sms"] and phone():
            self.sms.send(phone(), text)
            return "sms"
        if failed_for_now:
            log.warning("notify.push_unavailable", user_id=uid, kind=kind, message_id=mid)
            _metric("failed")
            raise PushUnavailable(retry_after)
        return "inbox"

    # ------------------------------------------------------------------ preferences and quiet hours

    def preferences_of(self, uid: str) -> dict[str, Any]:
        return self._merged(store.preferences(uid))

    def _merged(self, stored: Optional[dict[str, Any]]) -> dict[str, Any]:
        default_quiet = {"start": f"{self.settings.quiet_hours_start:02d}:00",
                         "end": f"{self.settings.quiet_hours_end:02d}:00"}
        prefs: dict[str, Any] = {c: {"push": True, "sms": True} for c in CATEGORIES}
        prefs["quiet_hours"], prefs["time_zone"] = default_quiet, None
        if stored:
            for c in CATEGORIES:
                prefs[c] = stored.get(c) or prefs[c]
            prefs["quiet_hours"], prefs["time_zone"] = stored.get("quiet_hours"), stored.get("time_zone")
        return prefs

    def get_preferences(self, caller: Any) -> m.PreferencesView:
        return m.PreferencesView(**self.preferences_of(access.owner(caller)))

    def set_preferences(self, caller: Any, body: m.PreferencesIn) -> m.PreferencesView:
        uid = access.owner(caller)
        stored = body.model_dump()
        store.put_preferences(uid, stored)
        log.event("notify.preferences_set", user_id=uid)
        return m.PreferencesView(**self._merged(stored))

    @staticmethod
    def _quiet_until(prefs: dict[str, Any], devices: list[dict[str, Any]], params: dict[str, Any],
                     now: datetime) -> Optional[datetime]:
        """When quiet hours end, if ``now`` is inside them in the person's zone (the one they chose, else
        their newest device's, else the clinic's); None outside them or without quiet hours."""
        from datetime import time as dtime

        from chalicelib.core.tz import local_to_utc, zone

        quiet = prefs.get("quiet_hours")
        zone_name = _person_zone(prefs, devices) or params.get("time_zone")
        if not quiet or not zone_name:
            return None
        start, end = (dtime.fromisoformat(quiet["start"]), dtime.fromisoformat(quiet["end"]))
        local = now.astimezone(zone(zone_name))
        t = local.time().replace(tzinfo=None)
        inside = (t >= start or t < end) if start > end else (start <= t < end)
        if not inside:
            return None
        day = local.date() if t < end else local.date() + timedelta(days=1)
        return local_to_utc(day, end, zone_name)

    def zone_of(self, uid: str) -> Optional[str]:
        """The zone a person lives by: the one they chose, else their newest device's; None if neither."""
        return _person_zone(self.preferences_of(uid), store.devices(uid))

    def release_held(self, now: datetime) -> dict[str, int]:
        """Send the messages quiet hours held whose morning has come (the held index, this hour and the 12
        before: a job that was down catches up)."""
        buckets = [store.held_bucket(_iso(now - timedelta(hours=back))) for back in range(12, -1, -1)]
        sent = failed = lapsed = 0
        held = store.held_due(buckets, _iso(now))
        visits = self._visits_of(held)
        with self.batched():  # on the queue ten at a time; what fails to go stays held for the next run
            for r in held:
                if self._visit_lapsed(r, visits):
                    store.mark_delivered(r["key"], "lapsed", _iso(self._now()))  # never sent: the visit is gone
                    log.event("notify.held_lapsed", kind=r["kind"], message_id=r.get("message_id"))
                    lapsed += 1
                    continue
                try:
                    outcome = self.send(r["user_id"], r["kind"], r["key"], r.get("params") or {}, r.get("link"),
                                        release=True)
                except Exception as exc:  # this one stays held for the next run; the others go out now
                    failed += 1
                    log.warning("job.release_held_failed", kind=r["kind"], error=type(exc).__name__)
                    continue
                sent += outcome not in ("duplicate", "held")
        log.event("job.release_held", sent=sent, failed=failed, lapsed=lapsed)
        return {"sent": sent, "failed": failed, "lapsed": lapsed}

    @staticmethod
    def _visits_of(held: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The bookings of held messages about a visit (one BatchGetItem)."""
        from chalicelib.booking import store as booking_store

        ids = {(r.get("link") or "").split("/", 1)[1] for r in held
               if r.get("kind") in LIVE_VISIT and (r.get("link") or "").startswith("booking/")}
        if not ids:
            return {}
        return {b["booking_id"]: b for b in db.batch_get([(booking_store.booking_pk(i), "BOOKING") for i in ids])}

    @staticmethod
    def _visit_lapsed(r: dict[str, Any], visits: dict[str, dict[str, Any]]) -> bool:
        statuses = LIVE_VISIT.get(r.get("kind") or "")
        link = r.get("link") or ""
        if not statuses or not link.startswith("booking/"):
            return False
        b = visits.get(link.split("/", 1)[1])
        start = (r.get("params") or {}).get("start_utc")
        return b is None or b.get("status") not in statuses or bool(start and b.get("start_utc") != start)


def _metric(outcome: str) -> None:
    """Notifications sent or failed, as an operational metric (analytics' EMF lines; infra alarms on failures)."""
    from chalicelib.analytics.jobs import notification_metric

    notification_metric(outcome)


def _person_zone(prefs: dict[str, Any], devices: list[dict[str, Any]]) -> Optional[str]:
    newest = max(devices, key=lambda d: d["refreshed_at"]) if devices else None
    return prefs.get("time_zone") or (newest.get("time_zone") if newest else None)
