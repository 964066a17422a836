"""Clinic onboarding and the public catalogue.

Who may do what (every call checks the caller against the object):
- clinic_admin with an authenticator app: their own clinics only; another
  clinic's objects answer 404, as if they did not exist;
- doctor with an authenticator app: their own profile and schedule view;
- platform_admin with an authenticator app: reads any clinic, verifies or rejects;
- patients and anonymous callers: the public catalogue of active clinics.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional

from chalicelib.clinics import access, schedule, store
from chalicelib.core import clock, db, log, ratelimit
from chalicelib.core.crypto import keyed_hash, new_code, same
from chalicelib.core.errors import (
    AppError,
    FieldError,
    conflict,
    field_invalid,
    forbidden,
    not_found,
    validation_failed,
)
from chalicelib.core.ids import is_ulid, new_id
from chalicelib.core.settings import Settings
from chalicelib.core.tz import present

if TYPE_CHECKING:
    from chalicelib.clinics import models as m
else:  # loaded on first use: a catalogue request never needs the staff side's models (cold start)
    from chalicelib.core.lazy import lazy_module

    m = lazy_module("chalicelib.clinics.models")

STAFF_ROLES = ("clinic_admin", "doctor", "platform_admin")
INVITE_ATTEMPTS = 5
UNAVAILABLE_DAYS = 14  # how far ahead a clinic sees the time other clinics hold
FUTURE_BOOKINGS_DAYS = 367  # the longest booking horizon a clinic may set, and a day
CONFLICT_RETRIES = 5
PUBLIC_CLINIC_FIELDS = ("clinic_id", "display_name", "country", "currency", "status")


def _utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _schedule_out(item: dict[str, Any]) -> dict[str, Any]:
    """A template, exception or duty shift as staff see it (no TTL, no internal bounds of an exception).
    An exception says its ``source``: the clinic's, or the doctor's own leave (which names no clinic)."""
    if item["type"] == "schedule_exception":
        out = _strip(item, "expires_at", "starts_at_utc", "ends_at_utc")
        out["source"] = item.get("source", "clinic")
        if item["clinic_id"] == store.EVERYWHERE:
            out.pop("clinic_id")
        return out
    return _strip(item, "expires_at")


def _iso(epoch_s: int) -> str:
    return clock.iso(datetime.fromtimestamp(epoch_s, tz=timezone.utc))


def _hours(dumped: dict[str, Any]) -> dict[str, Any]:
    """Opening hours as HH:MM, like every other wall time the API shows."""
    if dumped.get("opening_hours"):
        dumped["opening_hours"] = {day: [{"start": iv["start"][:5], "end": iv["end"][:5]} for iv in ivs]
                                   for day, ivs in dumped["opening_hours"].items()}
    return dumped


_INDEX_KEYS = frozenset({"PK", "SK", "type"} | {f"GSI{i}{part}" for i in range(1, 5) for part in ("PK", "SK")})


def _strip(item: dict[str, Any], *drop: str) -> dict[str, Any]:
    """What a client sees of an item: no keys or index attributes, times as UTC strings."""
    hidden = _INDEX_KEYS | set(drop)
    out = {k: v for k, v in item.items() if k not in hidden}
    for k in ("created_at", "updated_at"):
        if isinstance(out.get(k), int):
            out[k] = _iso(out[k])
    return out


class ClinicService:
    def __init__(self, settings: Settings, sms: Any, email: Any, stripe: Any) -> None:
        self.s = settings
        self.sms = sms
        self.email = email
        self.stripe = stripe
        self.invite_limit = ratelimit.Limit("invite", 50, 24 * 3600, "invitation_limit")

    # ------------------------------------------------------------------ who may act

    @staticmethod
    def _staff(caller: Any, *roles: str) -> None:
        access.require_staff(caller, *roles)

    @staticmethod
    def _admin_clinic(caller: Any, cid: str) -> dict[str, Any]:
        """The clinic, if the caller administers it; 404 otherwise (never reveal another tenant)."""
        return access.require_admin(caller, cid)

    @staticmethod
    def _readable_clinic(caller: Any, cid: str) -> dict[str, Any]:
        return access.readable_clinic(caller, cid)

    @staticmethod
    def _commit(build: Any) -> None:
        """Commit the transaction ``build()`` makes; one that lost a race with another transaction on the
        same items (TransactionConflict) is built again and retried, so its conditions decide."""
        for attempt in range(CONFLICT_RETRIES):
            tx = build()
            try:
                tx.commit()
                return
            except db.TxCancelled as exc:
                lost_race = exc.reasons and all(r == "TransactionConflict" for r in exc.reasons.values())
                if not lost_race or attempt == CONFLICT_RETRIES - 1:
                    raise

    def _child(self, cid: str, kind: str, child_id: str) -> dict[str, Any]:
        item = store.get_child(cid, kind, child_id) if is_ulid(child_id) else None
        if item is None:
            raise not_found()
        return item

    @staticmethod
    def _now() -> int:
        return clock.epoch()

    # ------------------------------------------------------------------ clinic life

    def view(self, clinic: dict[str, Any]) -> dict[str, Any]:
        return _strip(clinic, "admin_count")  # the counter that keeps the last administrator is internal

    def create_clinic(self, caller: Any, req: m.ClinicCreate) -> dict[str, Any]:
        self._staff(caller, "clinic_admin")
        now = self._now()
        cid = new_id()
        clinic = {
            "clinic_id": cid, "legal_name": req.legal_name, "display_name": req.display_name.model_dump(),
            "tax_id": req.tax_id, "country": req.country, "currency": req.currency,
            "contacts": req.contacts.model_dump(exclude_none=True), "status": "draft",
            "policies": m.Policies().model_dump(exclude={"version"}, exclude_none=True),
            "payouts": {"status": "not_started", "charges_enabled": False, "payouts_enabled": False},
            "created_at": now, "updated_at": now, "created_by": caller.user_id, "version": 1,
        }
        store.register_clinic(db.Tx(), clinic, _iso(now), caller.user_id, now).commit()
        log.event("clinic.registered", clinic_id=cid, user_id=caller.user_id)
        return self.view(clinic)

    def my_clinics(self, caller: Any, q: m.Page) -> dict[str, Any]:
        self._staff(caller, "clinic_admin")
        memberships, cursor = store.clinics_of_admin_page(caller.user_id, q.limit, q.cursor)
        found = store.get_clinics([x["clinic_id"] for x in memberships])
        clinics = [found[x["clinic_id"]] for x in memberships if x["clinic_id"] in found]
        return {"items": [{k: c[k] for k in ("clinic_id", "display_name", "status", "legal_name")}
                          for c in clinics], "next_cursor": cursor}

    def get_clinic(self, caller: Any, cid: str) -> dict[str, Any]:
        return self.view(self._readable_clinic(caller, cid))

    def patch_clinic(self, caller: Any, cid: str, req: m.ClinicPatch) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        changes = req.model_dump(exclude_unset=True, exclude={"version"}, exclude_none=True)
        if not changes:
            raise validation_failed([FieldError("body", "empty", "nothing to change")])
        changes["updated_at"] = self._now()
        clinic = store.update_clinic(cid, changes, req.version)
        if clinic["status"] == "active":
            self._list_branches(clinic, True)
        return self.view(clinic)

    def _transition(self, cid: str, allowed: tuple[str, ...], to: str, **extra: Any) -> dict[str, Any]:
        now = self._now()
        clinic = store.transition_clinic(cid, allowed, to, now, _iso(now), extra)
        if clinic is None:
            raise conflict("wrong_status", f"allowed only from: {', '.join(allowed)}")
        log.event("clinic.status", clinic_id=cid, status=to)
        return clinic

    def submit(self, caller: Any, cid: str) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        if not store.has_child(cid, "BRANCH#"):
            raise conflict("branch_required", "add at least one branch before submitting")
        return self.view(self._transition(cid, ("draft", "rejected"), "submitted"))

    @staticmethod
    def _platform_clinic(caller: Any, cid: str) -> dict[str, Any]:
        return access.require_platform_admin(caller, cid)

    def verify(self, caller: Any, cid: str) -> dict[str, Any]:
        self._platform_clinic(caller, cid)
        return self.view(self._transition(cid, ("submitted",), "verified", verified_by=caller.user_id))

    def reject(self, caller: Any, cid: str, req: m.Rejection) -> dict[str, Any]:
        self._platform_clinic(caller, cid)
        return self.view(self._transition(cid, ("submitted",), "rejected", rejection_reason=req.reason))

    def activate(self, caller: Any, cid: str) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        clinic = self._transition(cid, ("verified",), "active")
        self._list_branches(clinic, True)
        self._refresh_clinic_doctors(cid)
        return self.view(clinic)

    def review_queue(self, caller: Any, q: m.AdminClinicsQuery) -> dict[str, Any]:
        self._staff(caller, "platform_admin")
        items, cursor = store.clinics_by_status(q.status, q.limit, q.cursor)
        return {"items": [self.view(c) for c in items], "next_cursor": cursor}

    # ------------------------------------------------------------------ administrators and invitations

    def list_admins(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        items, cursor = store.admins_page(cid, q.limit, q.cursor)
        return {"items": [{"user_id": a["user_id"], "since": _iso(a["created_at"])} for a in items],
                "next_cursor": cursor}

    def remove_admin(self, caller: Any, cid: str, uid: str) -> None:
        """Remove an administrator; the last one stays, also when two remove each other at once (the
        clinic's ``admin_count`` is decremented in the same transaction, only while above 1)."""
        self._admin_clinic(caller, cid)
        if not is_ulid(uid):
            raise not_found()
        store.ensure_admin_count(cid)
        try:
            self._commit(lambda: store.remove_admin(db.Tx(), cid, uid, caller.user_id))
        except db.TxCancelled as exc:
            if exc.condition_failed("admin"):  # no such administrator: whatever the count, nothing to remove
                raise not_found() from None
            if exc.any("clinic"):
                raise conflict("last_admin", "a clinic keeps at least one administrator") from None
            if exc.any("caller"):
                raise not_found() from None
            raise
        log.event("clinic.admin_removed", clinic_id=cid, user_id=uid)

    def invite(self, caller: Any, cid: str, req: m.InvitationIn, lang: str) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        now = self._now()
        ratelimit.hit(self.invite_limit, cid, now)
        iid, code = new_id(), new_code()
        inv = {
            "invitation_id": iid, "clinic_id": cid, "role": req.role, "channel": "sms" if req.phone else "email",
            "phone": req.phone, "email": req.email, "code_hash": keyed_hash("invite", iid, code), "attempts": 0,
            "status": "pending", "invited_by": caller.user_id, "created_at": now,
            "expires_at": now + self.s.invitation_ttl_s,
        }
        store.put_new(store.invitation_item(inv))
        name = clinic["display_name"]["ru" if lang == "ru" else "en"]
        days = self.s.invitation_ttl_s // 86400
        if lang == "ru":
            text = f"{name} приглашает вас в свою команду. Код: {code}, номер приглашения {iid}. Действует {days} дн."
        else:
            text = f"{name} invites you to its team. Code: {code}, invitation {iid}. Valid {days} days."
        try:
            if req.phone:
                self.sms.send(req.phone, text)
            else:
                self.email.send(req.email, "Приглашение / Invitation", text)
        except AppError:
            # The code never reached anyone: take the invitation back, so no pending invitation nobody
            # can accept is left behind; the administrator simply sends it again.
            store.delete_pending_invitation(iid)
            raise
        log.event("invitation.sent", clinic_id=cid, invitation_id=iid, role=req.role)
        return self._invitation_view(inv)

    @staticmethod
    def _invitation_view(inv: dict[str, Any]) -> dict[str, Any]:
        if inv.get("phone"):
            sent_to = inv["phone"][:2] + "*" * (len(inv["phone"]) - 6) + inv["phone"][-4:]
        else:
            name, _, domain = (inv.get("email") or "").partition("@")
            sent_to = f"{name[:1]}***@{domain}"
        return {"invitation_id": inv["invitation_id"], "clinic_id": inv["clinic_id"], "role": inv["role"],
                "channel": inv["channel"], "sent_to": sent_to, "status": inv["status"],
                "created_at": _iso(inv["created_at"]), "expires_at": _iso(inv["expires_at"])}

    def list_invitations(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        now = self._now()
        out = []
        items, cursor = store.clinic_invitations_page(cid, q.limit, q.cursor)
        for inv in items:
            view = self._invitation_view(inv)
            if inv["status"] == "pending" and inv["expires_at"] <= now:
                view["status"] = "expired"
            out.append(view)
        return {"items": out, "next_cursor": cursor}

    def revoke_invitation(self, caller: Any, cid: str, iid: str) -> None:
        self._admin_clinic(caller, cid)
        inv = store.get_invitation(iid) if is_ulid(iid) else None
        if inv is None or inv["clinic_id"] != cid:
            raise not_found()
        store.close_invitation(db.Tx(), iid, "revoked").commit_or(
            conflict("wrong_status", "the invitation is no longer pending"))

    def accept_invitation(self, caller: Any, req: m.InvitationAccept) -> dict[str, Any]:
        self._staff(caller, "clinic_admin", "doctor")
        now = self._now()
        inv = store.spend_invitation_attempt(req.invitation_id, INVITE_ATTEMPTS, now)
        if inv is None:
            current = store.get_invitation(req.invitation_id)
            if current is None or current["status"] != "pending":
                raise AppError(code="invitation_closed", status=400)
            if current["expires_at"] <= now:
                raise AppError(code="invitation_expired", status=400,
                               detail="ask the clinic to send a new invitation")
            raise AppError(code="too_many_attempts", status=400)
        if not same(keyed_hash("invite", inv["invitation_id"], req.code), inv["code_hash"]):
            raise AppError(code="invalid_code", status=400,
                           extra={"attempts_left": max(0, INVITE_ATTEMPTS - int(inv["attempts"]))})
        if inv["role"] != caller.role:
            raise forbidden("role_mismatch", f"this invitation is for a {inv['role']} account")
        cid = inv["clinic_id"]
        from chalicelib.identity import store as identity_store

        user = identity_store.get_user(caller.user_id) or {}
        member = (store.admin_item(cid, caller.user_id, now) if inv["role"] == "clinic_admin"
                  else store.doctor_membership_item(cid, caller.user_id, now))
        member.update({k: user[k] for k in ("first_name", "last_name") if user.get(k)})
        is_admin = inv["role"] == "clinic_admin"
        if is_admin:
            store.ensure_admin_count(cid)

        def build() -> db.Tx:
            tx = store.close_invitation(db.Tx(), inv["invitation_id"], "accepted", inv["attempts"])
            if is_admin:
                return store.add_admin(tx, member)
            # the clinic's whole-clinic card grants now reach this doctor's "my patients" (records/jobs.py)
            tx.event("clinic.doctor_joined", {"clinic_id": cid, "doctor_id": caller.user_id})
            return store.add_doctor(tx, member)

        try:
            self._commit(build)
        except db.TxCancelled as exc:
            if exc.any("member"):
                raise conflict("already_member") from None
            if exc.any("invitation"):
                raise AppError(code="invitation_closed", status=400) from None
            raise
        if inv["role"] == "doctor":
            self.refresh_doctor_listings(caller.user_id)
        log.event("invitation.accepted", clinic_id=cid, invitation_id=inv["invitation_id"], user_id=caller.user_id)
        return {"clinic_id": cid, "role": inv["role"]}

    # ------------------------------------------------------------------ branches, services, resources

    def _branch_view(self, b: dict[str, Any]) -> dict[str, Any]:
        return _strip(b, "clinic_name", "clinic_contacts", "resources")

    def add_branch(self, caller: Any, cid: str, req: m.BranchIn) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        now = self._now()
        bid = new_id()
        keys = store.branch_keys(cid, bid, req.city)
        branch = {"PK": keys["PK"], "SK": keys["SK"], "type": "branch", "clinic_id": cid,
                  "branch_id": bid, **_hours(req.model_dump(mode="json", exclude_none=True)), "created_at": now,
                  "version": 1}
        if clinic["status"] == "active":
            branch.update(self._listing_fields(clinic), GSI1PK=keys["GSI1PK"], GSI1SK=keys["GSI1SK"])
        store.put_new(branch)
        return self._branch_view(branch)

    def list_branches(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._readable_clinic(caller, cid)
        items, cursor = store.children(cid, "BRANCH#", q.limit, q.cursor)
        return {"items": [self._branch_view(b) for b in items], "next_cursor": cursor}

    def patch_branch(self, caller: Any, cid: str, bid: str, req: m.BranchPatch) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        self._child(cid, "BRANCH", bid)
        changes = _hours(req.model_dump(mode="json", exclude_unset=True, exclude={"version"}, exclude_none=True))
        if not changes:
            raise validation_failed([FieldError("body", "empty", "nothing to change")])
        return self._branch_view(store.update_child(cid, "BRANCH", bid, changes, req.version))

    @staticmethod
    def _listing_fields(clinic: dict[str, Any]) -> dict[str, Any]:
        contacts = clinic.get("contacts", {})
        public = {k: contacts[k] for k in contacts.get("public", []) if k in contacts}
        return {"clinic_name": clinic["display_name"], "clinic_contacts": public}

    def _list_branches(self, clinic: dict[str, Any], listed: bool) -> None:
        fields = self._listing_fields(clinic) if listed else None
        store.relist_branches(store.all_children(clinic["clinic_id"], "BRANCH#"), fields)

    def _check_prepayment_allowed(self, clinic: dict[str, Any], prepayment: Optional[m.Prepayment],
                                  price_currency: str) -> None:
        if prepayment is None or prepayment.kind == "none":
            return
        if not clinic.get("payouts", {}).get("charges_enabled"):
            raise conflict("payouts_not_ready", "finish payout onboarding before requiring prepayment")
        if prepayment.kind == "fixed" and prepayment.amount and prepayment.amount.currency != price_currency:
            raise field_invalid("prepayment.amount.currency", "currency_mismatch", "use the clinic's currency")

    def add_service(self, caller: Any, cid: str, req: m.ServiceIn) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        if req.price.currency != clinic["currency"]:
            raise field_invalid("price.currency", "currency_mismatch", f"the clinic bills in {clinic['currency']}")
        self._check_prepayment_allowed(clinic, req.prepayment, clinic["currency"])
        if req.prepayment.kind == "fixed" and req.prepayment.amount and req.prepayment.amount.amount > req.price.amount:
            raise field_invalid("prepayment.amount.amount", "exceeds_price", "prepayment cannot exceed the price")
        now = self._now()
        sid = new_id()
        service = {**store.service_keys(cid, sid), "type": "service", "clinic_id": cid,
                   "service_id": sid, **req.model_dump(mode="json", exclude_none=True), "active": True,
                   "created_at": now, "version": 1}
        store.put_new(service)
        return _strip(service)

    def list_services(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._readable_clinic(caller, cid)
        items, cursor = store.children(cid, "SERVICE#", q.limit, q.cursor)
        return {"items": [_strip(s) for s in items], "next_cursor": cursor}

    def patch_service(self, caller: Any, cid: str, sid: str, req: m.ServicePatch) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        current = self._child(cid, "SERVICE", sid)
        if req.price and req.price.currency != clinic["currency"]:
            raise field_invalid("price.currency", "currency_mismatch", f"the clinic bills in {clinic['currency']}")
        self._check_prepayment_allowed(clinic, req.prepayment, clinic["currency"])
        changes = req.model_dump(mode="json", exclude_unset=True, exclude={"version"}, exclude_none=True)
        if req.prepayment is not None:  # a whole rule replaces the old one: `{}` means kind none, said out loud
            changes["prepayment"] = req.prepayment.model_dump(mode="json", exclude_none=True)
        if not changes:
            raise validation_failed([FieldError("body", "empty", "nothing to change")])
        if "duration_minutes" in changes:
            blocks = changes["duration_minutes"] // 5 * (1 + len(current.get("resource_kinds", [])))
            if blocks > m.MAX_LOCKS:
                raise field_invalid("duration_minutes", "too_long_to_book",
                                    "too long for a visit that also needs its resources")
        price = changes.get("price", current["price"])["amount"]
        pre = changes.get("prepayment", current.get("prepayment", {}))
        if pre.get("kind") == "fixed" and pre["amount"]["amount"] > price:
            raise field_invalid("prepayment.amount.amount", "exceeds_price", "prepayment cannot exceed the price")
        return _strip(store.update_child(cid, "SERVICE", sid, changes, req.version))

    def add_resource(self, caller: Any, cid: str, bid: str, req: m.ResourceIn) -> dict[str, Any]:
        self._admin_clinic(caller, cid)
        self._child(cid, "BRANCH", bid)
        rid = new_id()
        item = {**store.resource_keys(cid, rid), "type": "resource", "clinic_id": cid,
                "resource_id": rid, "branch_id": bid, **req.model_dump(), "created_at": self._now()}
        store.add_resource(db.Tx(), item, {"resource_id": rid, "kind": req.kind, "capacity": req.capacity}) \
            .commit_or(not_found())
        return _strip(item)

    def list_resources(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._readable_clinic(caller, cid)
        items, cursor = store.children(cid, "RESOURCE#", q.limit, q.cursor)
        return {"items": [_strip(r) for r in items], "next_cursor": cursor}

    # ------------------------------------------------------------------ policies and payouts

    def set_policies(self, caller: Any, cid: str, req: m.Policies) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        if req.cashback_cap and req.cashback_cap.currency != clinic["currency"]:
            raise field_invalid("cashback_cap.currency", "currency_mismatch",
                                f"the clinic bills in {clinic['currency']}")
        policies = req.model_dump(mode="json", exclude={"version"}, exclude_none=True)
        clinic = store.update_clinic(cid, {"policies": policies, "updated_at": self._now()},
                                     req.version or clinic["version"])
        return self.view(clinic)

    def start_payouts(self, caller: Any, cid: str) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        account_id = clinic.get("payouts", {}).get("account_id")
        if not account_id:
            acct = self.stripe.create_connected_account(cid, clinic["country"], clinic.get("contacts", {}).get("email"),
                                                        idempotency_key=f"connect-{cid}")
            account_id = acct.account_id
            payouts = {**clinic["payouts"], "account_id": account_id, "status": "onboarding",
                       "charges_enabled": acct.charges_enabled, "payouts_enabled": acct.payouts_enabled}
            store.start_payouts(db.Tx(), account_id, cid, payouts, clinic["version"]).commit_or(
                conflict("version_conflict", "payout onboarding started meanwhile; retry"))
        base = (self.s.portal_base_url or self.s.public_base_url).rstrip("/")
        url, expires = self.stripe.onboarding_link(account_id, refresh_url=f"{base}/portal/#payouts-refresh",
                                                   return_url=f"{base}/portal/#payouts-return")
        log.event("payouts.onboarding_link", clinic_id=cid)
        return {"account_id": account_id, "onboarding_url": url, "expires_at": _iso(expires)}

    def payouts(self, caller: Any, cid: str) -> dict[str, Any]:
        return dict(self._readable_clinic(caller, cid).get("payouts", {}))

    def handle_stripe_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Apply ``account.updated``; duplicates and older events change nothing. Payment events go to the
        payments feature."""
        if str(event.get("type", "")).startswith(("payment_intent.", "checkout.session.", "charge.", "refund.")):
            from chalicelib import bootstrap

            return bootstrap.payments().handle_event(event)
        if event.get("type") != "account.updated":
            return {"handled": False}
        acct = (event.get("data") or {}).get("object") or {}
        account_id, created = acct.get("id"), int(event.get("created") or 0)
        cid = store.clinic_for_stripe_account(account_id) if isinstance(account_id, str) else None
        if cid is None:
            return {"handled": False}
        payouts = {"account_id": account_id, "charges_enabled": bool(acct.get("charges_enabled")),
                   "payouts_enabled": bool(acct.get("payouts_enabled")),
                   "status": "active" if acct.get("charges_enabled") else "onboarding", "event_created": created}
        if not store.apply_payouts(cid, payouts, created):
            return {"handled": False}
        log.event("payouts.updated", clinic_id=cid, charges_enabled=payouts["charges_enabled"])
        return {"handled": True}

    # ------------------------------------------------------------------ doctors

    def doctor_profile(self, caller: Any) -> dict[str, Any]:
        self._staff(caller, "doctor")
        profile = store.get_doctor_profile(caller.user_id)
        if profile is None:
            raise not_found()
        return _strip(profile)

    def put_doctor_profile(self, caller: Any, req: m.DoctorProfileIn) -> dict[str, Any]:
        self._staff(caller, "doctor")
        from chalicelib.identity import store as identity_store

        user = identity_store.get_user(caller.user_id) or {}
        now = self._now()
        item = store.doctor_profile_item(caller.user_id, {
            "first_name": user.get("first_name", ""), "last_name": user.get("last_name", ""),
            **req.model_dump(mode="json", exclude_none=True), "updated_at": now})
        store.put_doctor_profile(item)
        self.refresh_doctor_listings(caller.user_id)
        return _strip(item)

    def list_doctors(self, caller: Any, cid: str, q: m.Page) -> dict[str, Any]:
        self._readable_clinic(caller, cid)
        items, cursor = store.clinic_doctors_page(cid, q.limit, q.cursor)
        return {"items": [_strip(d, "listed_specialties") for d in items], "next_cursor": cursor}

    def remove_doctor(self, caller: Any, cid: str, did: str, req: m.DoctorRemoval) -> None:
        """Remove a doctor from a clinic, atomically where it matters and resumably for the rest.

        1. One transaction marks the membership ``removing`` (every access check treats the doctor as
           gone from then on), takes them out of the catalogue and writes the ``clinic.doctor_removed``
           event, whose consumer (booking) cancels or keeps their future bookings as the clinic decided.
        2. Their templates, exceptions and duty shifts in this clinic are deleted in chunks, idempotently.
        3. The membership itself goes last. A removal that stopped anywhere is finished by a retry, with
           the decision taken first."""
        self._admin_clinic(caller, cid)
        member = store.get_membership(cid, did) if is_ulid(did) else None
        if member is None:
            raise not_found()
        if member.get("status") != store.REMOVING:
            self._begin_doctor_removal(cid, did, member, req.future_bookings)
        self._finish_doctor_removal(cid, did)
        log.event("clinic.doctor_removed", clinic_id=cid, doctor_id=did)

    def _begin_doctor_removal(self, cid: str, did: str, member: dict[str, Any], decision: Optional[str]) -> None:
        now = clock.now()
        if decision is None:
            ahead = store.future_bookings(cid, did, clock.iso(now),
                                          clock.iso(now + timedelta(days=FUTURE_BOOKINGS_DAYS)))
            if ahead:
                raise AppError(
                    code="doctor_has_future_bookings", status=409,
                    detail="say what happens to them: future_bookings 'cancel' or 'keep_for_reassignment'",
                    extra={"bookings": [{"booking_id": b["booking_id"],
                                         "start": present(_utc(b["start_utc"]), b["time_zone"])} for b in ahead]})
        # No bookings seen: any made meanwhile are cancelled (patients told) rather than left to a
        # doctor who no longer works here.
        decision = decision or "cancel"
        tx = store.mark_doctor_removing(db.Tx(), member, decision, self._now())
        tx.event("clinic.doctor_removed", {"clinic_id": cid, "doctor_id": did, "future_bookings": decision})
        try:
            tx.commit()
        except db.TxCancelled as exc:
            # another removal marked it first (then this one finishes it), or it is gone already
            if exc.any("member") and (store.get_membership(cid, did) or {}).get("status") == store.REMOVING:
                return
            if exc.any("member"):
                raise not_found() from None
            raise

    @staticmethod
    def _finish_doctor_removal(cid: str, did: str) -> None:
        keys = store.removal_cleanup(cid, did, clock.iso(clock.now()))
        for at in range(0, len(keys), db.Tx.MAX_ITEMS):
            store.delete_keys(db.Tx(), keys[at:at + db.Tx.MAX_ITEMS]).commit()
        try:
            store.delete_membership(db.Tx(), cid, did).commit()
        except db.TxCancelled:
            pass  # a concurrent retry finished first

    def refresh_doctor_listings(self, did: str) -> None:
        """Rewrite the catalogue items of one doctor from their profile, clinics and templates."""
        profile = store.get_doctor_profile(did)
        memberships = [x for x in store.doctor_memberships(did) if x.get("status") != store.REMOVING]
        if not memberships:
            return
        clinics = store.get_clinics([x["clinic_id"] for x in memberships])
        modalities: dict[str, set[str]] = {}
        for t in store.templates(did):
            modalities.setdefault(t["clinic_id"], set()).add(t["modality"])
        for member in memberships:
            cid = member["clinic_id"]
            clinic = clinics.get(cid)
            listed = bool(profile) and clinic is not None and clinic["status"] == "active"
            fields: dict[str, Any] = {}
            if profile:
                fields = {k: profile.get(k) for k in ("first_name", "last_name", "specialties", "category",
                                                       "years_of_experience", "languages", "photo_url", "takes_duty")}
                fields = {k: v for k, v in fields.items() if v is not None}
            fields["modalities"] = sorted(modalities.get(cid, set()))
            if clinic:
                fields["clinic_name"] = clinic["display_name"]
            specs = list((profile or {}).get("specialties", [])) if listed else []
            try:
                store.write_listings(db.Tx(), member, fields, listed, specs).commit()
            except db.TxCancelled as exc:
                if not exc.only("member"):
                    raise
                # the doctor is being removed from this clinic meanwhile: no listing there

    def _refresh_clinic_doctors(self, cid: str) -> None:
        for d in store.all_children(cid, "DOCTOR#"):
            if d.get("status") != store.REMOVING:
                self.refresh_doctor_listings(d["doctor_id"])

    # ------------------------------------------------------------------ schedules

    def _schedule_target(self, caller: Any, cid: str, did: str) -> dict[str, Any]:
        clinic = self._admin_clinic(caller, cid)
        access.require_doctor_of(cid, did)
        return clinic

    def _branch_zone(self, cid: str, bid: str, field: str = "branch_id") -> str:
        branch = store.get_child(cid, "BRANCH", bid) if bid and is_ulid(bid) else None
        if branch is None:
            raise field_invalid(field, "unknown_branch", "no such branch in this clinic")
        return branch["time_zone"]

    def _add_schedule_item(self, did: str, cid: str, item: dict[str, Any]) -> dict[str, Any]:
        """Write a template, extra hours or duty shift unless it overlaps the doctor's other commitments,
        in any clinic. The check and the write are serialised per doctor by a guard item. Only what has
        not ended before the new item begins is read: history stays out of the check."""
        version = store.schedule_version(did)
        today = clock.now().date()
        mine = schedule.intervals_of(item, today)
        if not mine:
            raise field_invalid("body", "empty_schedule", "this produces no working time in the next year")
        begins, ends = min(s for s, _ in mine), max(e for _, e in mine)
        for other in store.schedule_for(did, clock.iso(begins), clock.iso(ends)):
            hit = schedule.first_overlap(mine, schedule.intervals_of(other, today))
            if hit:
                from chalicelib.core.tz import present as show

                when = show(hit[0], item["time_zone"])["local"]
                detail = (f"overlaps {other['type'].replace('_', ' ')} {other.get('item_id')} at {when}"
                          if other["clinic_id"] == cid else f"the doctor works in another clinic at {when}")
                raise conflict("schedule_overlap", detail)
        tx = store.schedule_guard(db.Tx(), did, version)
        store.add_schedule_item(tx, item).commit_or(
            conflict("version_conflict", "the schedule changed meanwhile; retry"))
        return _schedule_out(item)

    def add_template(self, caller: Any, cid: str, did: str, req: m.TemplateIn) -> dict[str, Any]:
        self._schedule_target(caller, cid, did)
        fields = req.model_dump(mode="json", exclude_none=True)
        fields["start"], fields["end"] = req.start.strftime("%H:%M"), req.end.strftime("%H:%M")
        item = store.template_item(did, cid, new_id(), fields, self._branch_zone(cid, req.branch_id), self._now())
        view = self._add_schedule_item(did, cid, item)
        self.refresh_doctor_listings(did)
        return view

    def add_exception(self, caller: Any, cid: str, did: str, req: m.ExceptionIn) -> dict[str, Any]:
        self._schedule_target(caller, cid, did)
        fields = req.model_dump(mode="json", exclude_none=True)
        if req.start and req.end:
            fields["start"], fields["end"] = req.start.strftime("%H:%M"), req.end.strftime("%H:%M")
        zone_name = self._branch_zone(cid, req.branch_id or "") if req.kind == "extra" else None
        item = store.exception_item(did, cid, new_id(), {**fields, "source": "clinic"}, zone_name, self._now())
        if req.kind == "extra":
            return self._add_schedule_item(did, cid, item)
        tx = store.add_schedule_item(db.Tx(), item)  # leave only removes time; it cannot clash
        # the patients whose visits it hits are told by the notification service, which reads them when it
        # handles the event (after this commit: no visit booked meanwhile is missed)
        tx.event("schedule.leave_added", {"doctor_id": did, "clinic_id": cid, "item_id": item["item_id"],
                                          "source": "clinic"})
        tx.commit()
        # a clinic's leave takes the doctor out of this clinic's time only: its visits it hits are listed
        return {**_schedule_out(item), "affected_bookings": self._affected(did, cid, [item])}

    def add_my_leave(self, caller: Any, req: m.DoctorLeaveIn) -> dict[str, Any]:
        """The doctor's own leave: away in every clinic. The answer lists the visits it hits, in any clinic;
        each clinic sees them in the doctor's schedule and chooses (move, reschedule, cancel)."""
        self._staff(caller, "doctor")
        fields = req.model_dump(mode="json", exclude_none=True)
        if req.start and req.end:
            fields["start"], fields["end"] = req.start.strftime("%H:%M"), req.end.strftime("%H:%M")
        item = store.exception_item(caller.user_id, store.EVERYWHERE, new_id(),
                                    {"kind": "leave", **fields, "source": "doctor"}, None, self._now())
        tx = store.add_schedule_item(db.Tx(), item)
        tx.event("schedule.leave_added", {"doctor_id": caller.user_id, "clinic_id": store.EVERYWHERE,
                                          "item_id": item["item_id"], "source": "doctor"})
        tx.commit()
        return {**_schedule_out(item), "affected_bookings": self._affected(caller.user_id, None, [item])}

    def delete_my_leave(self, caller: Any, item_id: str) -> None:
        self._staff(caller, "doctor")
        item = store.get_schedule_item(caller.user_id, "EXCEPTION", item_id) if is_ulid(item_id) else None
        if item is None or item["clinic_id"] != store.EVERYWHERE:
            raise not_found()
        store.delete_schedule_item(db.Tx(), item, store.EVERYWHERE).commit_or(not_found())

    def visits_hit_by_leave(self, did: str, cid: str, item_id: str) -> list[dict[str, Any]]:
        """The future visits a leave still in the schedule hits (event ``schedule.leave_added``: the patients
        are told); none once the leave is gone again."""
        item = store.get_schedule_item(did, "EXCEPTION", item_id)
        if item is None:
            return []
        return self._affected(did, None if cid == store.EVERYWHERE else cid, [item])

    def _affected(self, did: str, cid: Optional[str], leaves: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Future visits of the doctor (in clinic ``cid``, or in every clinic) that a leave takes time from."""
        from chalicelib.booking.slots import leave_intervals, overlaps

        leaves = [x for x in leaves if x.get("kind") == "leave"]
        if not leaves:
            return []
        now = clock.now()
        lo = min(_utc(x["starts_at_utc"]) for x in leaves)
        hi = max(_utc(x["ends_at_utc"]) for x in leaves)
        start, end = clock.iso(max(now, lo - timedelta(days=1))), clock.iso(hi) + "~"
        found = store.future_bookings(cid, did, start, end) if cid else store.doctor_future_bookings(did, start, end)
        out = []
        for b in found:
            visit = (_utc(b["start_utc"]), _utc(b["end_utc"]))
            if visit[1] <= now:
                continue
            hit = [x for x in leaves if any(overlaps(visit, iv) for iv in leave_intervals(x, visit, b["time_zone"]))]
            if hit:
                out.append({"booking_id": b["booking_id"], "clinic_id": b["clinic_id"], "patient_id": b["patient_id"],
                            "status": b["status"], "start_utc": b["start_utc"], "end_utc": b["end_utc"],
                            "leave_ids": [x["item_id"] for x in hit]})
        return out

    def add_duty_shift(self, caller: Any, cid: str, did: str, req: m.DutyShiftIn) -> dict[str, Any]:
        self._schedule_target(caller, cid, did)
        profile = store.get_doctor_profile(did) or {}
        if not profile.get("takes_duty"):
            raise conflict("not_on_duty_roster", "the doctor's profile does not take duty shifts")
        if req.specialty not in profile.get("specialties", []):
            raise field_invalid("specialty", "not_doctors_specialty", "the doctor does not have this specialty")
        zone_name = self._branch_zone(cid, req.branch_id)
        from chalicelib.core.tz import local_to_utc

        start_local, end_local = datetime.fromisoformat(req.starts_at), datetime.fromisoformat(req.ends_at)
        start = local_to_utc(start_local.date(), start_local.time(), zone_name)
        end = local_to_utc(end_local.date(), end_local.time(), zone_name)
        if end <= start or (end - start).total_seconds() > 24 * 3600:
            raise field_invalid("ends_at", "bad_shift", "a shift ends after it starts and lasts at most 24 hours")
        if end <= clock.now():
            raise field_invalid("ends_at", "in_the_past", "the shift is over already")
        item = store.duty_shift_item(did, cid, req.branch_id, req.specialty, zone_name, start, end, self._now())
        item["starts_at"], item["ends_at"] = req.starts_at, req.ends_at  # as given (a DST fold stays as asked)
        return self._add_schedule_item(did, cid, item)

    def clinic_schedule(self, caller: Any, cid: str, did: str) -> dict[str, Any]:
        if caller.role == "platform_admin":
            self._readable_clinic(caller, cid)
        else:
            self._schedule_target(caller, cid, did)
        return self._schedule_view(did, cid)

    def _schedule_view(self, did: str, cid: Optional[str]) -> dict[str, Any]:
        """Templates, and the exceptions and duty shifts that have not ended (history is not shown). A clinic
        sees its own items and the doctor's own leave; what other clinics hold is only ``unavailable`` time
        (the next 14 days, merged, naming no clinic), and ``affected_bookings`` lists its visits that a leave
        (its own or the doctor's) hits, for it to move, reschedule or cancel."""
        out: dict[str, list] = {"templates": [], "exceptions": [], "duty_shifts": []}
        key = {"schedule_template": "templates", "schedule_exception": "exceptions", "duty_shift": "duty_shifts"}
        items = store.schedule_for(did, clock.iso(clock.now()), store.FOREVER)
        others = []
        for x in items:
            if cid is None or x["clinic_id"] in (cid, store.EVERYWHERE):
                out[key[x["type"]]].append(_schedule_out(x))
            else:
                others.append(x)
        if cid is None:
            return out
        now = clock.now()
        until = now + timedelta(days=UNAVAILABLE_DAYS)
        busy = sorted((max(s, now), min(e, until)) for x in others for s, e in schedule.intervals_of(x, now.date())
                      if e > now and s < until)
        merged: list[list[datetime]] = []
        for s, e in busy:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out["unavailable"] = [{"start": clock.iso(s), "end": clock.iso(e)} for s, e in merged]
        mine = [x for x in items if x["clinic_id"] in (cid, store.EVERYWHERE) and x["type"] == "schedule_exception"]
        out["affected_bookings"] = self._affected(did, cid, mine)
        return out

    def my_schedule(self, caller: Any) -> dict[str, Any]:
        self._staff(caller, "doctor")
        return self._schedule_view(caller.user_id, None)

    def delete_schedule_item(self, caller: Any, cid: str, did: str, kind: str, item_id: str) -> None:
        self._schedule_target(caller, cid, did)
        prefix = {"templates": "TEMPLATE", "exceptions": "EXCEPTION", "duty-shifts": "DUTY"}[kind]
        item = store.get_schedule_item(did, prefix, item_id) if is_ulid(item_id) else None
        if item is None or item["clinic_id"] != cid:
            raise not_found()
        store.delete_schedule_item(db.Tx(), item, cid).commit_or(not_found())
        if prefix == "TEMPLATE":
            self.refresh_doctor_listings(did)

    # ------------------------------------------------------------------ public catalogue

    def catalog_clinics(self, q: m.CatalogClinicsQuery) -> dict[str, Any]:
        items, cursor = store.branches_in_city(q.city, q.limit, q.cursor)
        return {"items": [{
            "clinic_id": b["clinic_id"], "clinic_name": b.get("clinic_name"), "contacts": b.get("clinic_contacts", {}),
            "branch": {k: b.get(k) for k in ("branch_id", "name", "address", "city", "time_zone", "opening_hours",
                                            "phone") if b.get(k) is not None},
        } for b in items], "next_cursor": cursor}

    def _active_clinic(self, cid: str) -> dict[str, Any]:
        clinic = store.get_clinic(cid) if is_ulid(cid) else None
        if clinic is None or clinic["status"] != "active":
            raise not_found()
        return clinic

    def catalog_clinic(self, cid: str) -> dict[str, Any]:
        clinic = self._active_clinic(cid)
        branches = store.all_children(cid, "BRANCH#")
        return {**{k: clinic[k] for k in PUBLIC_CLINIC_FIELDS}, **self._listing_fields(clinic),
                "branches": [self._branch_view(b) for b in branches]}

    def catalog_services(self, cid: str, q: m.Page) -> dict[str, Any]:
        self._active_clinic(cid)
        items, cursor = store.children(cid, "SERVICE#", q.limit, q.cursor)
        return {"items": [_strip(s, "clinic_id") | {"clinic_id": cid} for s in items if s.get("active", True)],
                "next_cursor": cursor}

    def catalog_doctors(self, q: m.CatalogDoctorsQuery) -> dict[str, Any]:
        items, cursor = store.catalog_doctors(q.specialty, q.clinic_id, q.modality, q.language, q.limit, q.cursor)
        keys = ("doctor_id", "clinic_id", "clinic_name", "first_name", "last_name", "specialties", "category",
                "years_of_experience", "languages", "photo_url", "modalities", "takes_duty")
        return {"items": [{k: d[k] for k in keys if k in d} for d in items], "next_cursor": cursor}

    def catalog_doctor(self, did: str) -> dict[str, Any]:
        profile = store.get_doctor_profile(did) if is_ulid(did) else None
        if profile is None:
            raise not_found()
        clinics = [{"clinic_id": x["clinic_id"], "clinic_name": x.get("clinic_name"),
                    "modalities": x.get("modalities", [])}
                   for x in store.doctor_memberships(did) if x.get("listed")]
        if not clinics:
            raise not_found()
        keys = ("doctor_id", "first_name", "last_name", "specialties", "category", "years_of_experience",
                "languages", "bio", "photo_url", "takes_duty")
        return {**{k: profile[k] for k in keys if k in profile}, "clinics": clinics}
