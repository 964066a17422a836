"""Accounts, sign-up, two-factor login, sessions and step-up.

The rules (OWASP ASVS 5 V6, NIST 800-63B) and where each is enforced:
- codes: 6 digits from the CSPRNG (core.crypto.new_code), stored only as a keyed
  hash bound to the challenge id, single use (conditional consume), 5 minutes,
  at most 5 tries (conditional attempt counter);
- sending: 60 s resend cooldown and 5 SMS per phone per hour (one limiter),
  a per-client limit; 429 with Retry-After beyond them;
- passwords: argon2id; at least 8 characters; account throttling after 10
  failures in a quarter of the clock hour (40 a clock hour at most; fixed
  windows, core.ratelimit), with an event logged;
- no enumeration: sign-up, login and code requests answer alike for a phone
  that exists and one that does not (same status, same shape, same work);
- sessions: 15-minute ES256 access token, rotating opaque refresh token, reuse
  revokes the session, 30-day absolute lifetime, logout revokes;
- step-up: changing the phone, password or second factor consumes a fresh
  second factor granted to the session within the last 5 minutes.
"""
from __future__ import annotations

import secrets as _secrets
from datetime import date, datetime, timezone
from typing import Any, Optional

from chalicelib.core import clock, db, i18n, log, ratelimit
from chalicelib.core.crypto import keyed_hash, new_code, new_token, same
from chalicelib.core.errors import AppError, conflict, forbidden, not_found, too_many, unauthorized
from chalicelib.core.ids import is_ulid, new_id
from chalicelib.core.settings import Settings
from chalicelib.core.sms import SmsGateway
from chalicelib.core.sms import text as sms_text
from chalicelib.core.tokens import TokenError, sign, verify
from chalicelib.identity import access, devices, passwords, store
from chalicelib.identity import models as m

MAX_SESSIONS = 10
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _iso(epoch_s: int) -> str:
    return clock.iso(datetime.fromtimestamp(epoch_s, tz=timezone.utc))


_hasher = None
_dummy_hash: Optional[str] = None


def hasher() -> Any:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher, Type

        # argon2id with OWASP's first recommended configuration (19 MiB, t=2, p=1):
        # one lane suits a Lambda's single vCPU; memory stays far below its limit.
        _hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
    return _hasher


def hash_password(password: str) -> str:
    return hasher().hash(password)


def password_matches(stored: Optional[str], presented: str) -> bool:
    """Constant-time by construction (argon2 compares digests with compare_digest);
    an unknown account is checked against a dummy hash so it costs the same."""
    global _dummy_hash
    from argon2.exceptions import InvalidHashError, VerificationError

    if stored is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password(new_token())
        stored = _dummy_hash
        presented = presented + "\x00never"
    try:
        return hasher().verify(stored, presented)
    except (VerificationError, InvalidHashError):
        return False


class IdentityService:
    def __init__(self, settings: Settings, sms: SmsGateway) -> None:
        self.s = settings
        self.sms = sms
        # SMS to one phone, counted per kind of message so that what strangers can trigger (sign-up
        # notices, reset codes) never spends the owner's sign-in codes: "sms-phone" is sign-in and
        # step-up, which need the password or a session.
        def per_phone(name: str) -> ratelimit.Limit:
            return ratelimit.Limit(name, settings.sms_per_phone_per_hour, 3600, "sms_limit",
                                   min_interval_s=settings.sms_resend_cooldown_s, cooldown_code="resend_too_soon")

        self.sms_per_phone = {"login": per_phone("sms-phone"), "step_up": per_phone("sms-phone"),
                              "signup": per_phone("sms-signup"), "password_reset": per_phone("sms-reset"),
                              "phone_change": per_phone("sms-phone-change")}
        self.sms_per_client = ratelimit.Limit("sms-client", settings.sms_per_client_per_hour, 3600, "client_sms_limit")
        self.login_window_s = settings.login_failure_window_s
        self.login_address = ratelimit.Limit("login-address", settings.login_failures_per_address_window,
                                             settings.login_failure_window_s, "login_throttled")

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        return clock.epoch()

    def _sms_allowed(self, phone: str, client: str, now: int, purpose: str) -> None:
        ratelimit.hit(self.sms_per_client, client, now)
        ratelimit.hit(self.sms_per_phone[purpose], phone, now)

    def _new_challenge(self, purpose: str, phone: str, now: int, lang: str, *, user_id: str | None = None,
                       method: str = "sms", dead: bool = False, tx: Optional[db.Tx] = None,
                       **extra: Any) -> tuple[dict[str, Any], str]:
        """A challenge, written at once, or added to ``tx`` (named "challenge") when one is given."""
        cid = new_id()
        code = new_code()
        secret = new_token() if dead else code
        challenge = {
            "challenge_id": cid, "purpose": purpose, "method": method, "phone": phone, "user_id": user_id,
            "code_hash": keyed_hash("challenge", cid, secret), "attempts": 0, "used": False, "dead": dead,
            "sent_at": now, "expires_at": now + self.s.code_ttl_s, "resends": 0, "lang": lang, **extra,
        }
        if tx is not None:
            store.tx_put_challenge(tx, challenge)
        else:
            store.put_challenge(challenge)
        return challenge, code

    def _challenge_response(self, ch: dict[str, Any]) -> m.ChallengeResponse:
        sms = ch["method"] == "sms"
        return m.ChallengeResponse(
            challenge_id=ch["challenge_id"], second_factor=ch["method"], expires_at=_iso(ch["expires_at"]),
            resend_after=_iso(ch["sent_at"] + self.s.sms_resend_cooldown_s) if sms else None,
        )

    def _spend_attempt(self, challenge_id: str, purpose: str, now: int) -> dict[str, Any]:
        ch = store.count_attempt(challenge_id, self.s.code_max_attempts, now)
        if ch is None:
            current = store.get_challenge(challenge_id)
            if current is None or current["used"] or current["purpose"] != purpose:
                raise AppError(code="challenge_closed", status=400)
            if current["expires_at"] <= now:
                raise AppError(code="code_expired", status=400)
            raise AppError(code="too_many_attempts", status=400)
        if ch["purpose"] != purpose:
            raise AppError(code="challenge_closed", status=400)
        return ch

    def _wrong_code(self, ch: dict[str, Any]) -> AppError:
        left = max(0, self.s.code_max_attempts - int(ch["attempts"]))
        log.event("challenge.wrong_code", challenge_id=ch["challenge_id"], purpose=ch["purpose"], attempts_left=left)
        return AppError(code="invalid_code", status=400, extra={"attempts_left": left})

    def _second_factor_ok(self, ch: dict[str, Any], code: str, user: Optional[dict[str, Any]],
                          now: int) -> tuple[bool, dict[str, Any]]:
        """Check a code against a challenge. Returns (ok, user changes to persist with the login)."""
        if ch.get("dead"):
            return False, {}
        if ch["method"] == "sms":
            return same(keyed_hash("challenge", ch["challenge_id"], code), ch["code_hash"]), {}
        assert user is not None
        if len(code) == 6 and code.isdigit():
            step = self._totp_step(user.get("totp_secret", ""), code, now, int(user.get("totp_last_step", 0)))
            return (step is not None), ({"totp_last_step": step} if step is not None else {})
        wanted = keyed_hash("recovery", user["user_id"], code.strip().lower())
        hashes = list(user.get("recovery_hashes", []))
        for h in hashes:
            if same(h, wanted):
                hashes.remove(h)
                log.event("mfa.recovery_code_used", user_id=user["user_id"], left=len(hashes))
                return True, {"recovery_hashes": hashes}
        return False, {}

    @staticmethod
    def _totp_step(secret: str, code: str, now: int, last_step: int) -> Optional[int]:
        """The time step a TOTP code belongs to (±1 step of drift), refusing replays of a used step."""
        import pyotp

        if not secret:
            return None
        totp = pyotp.TOTP(secret)
        for offset in (0, -1, 1):
            t = now + offset * 30
            step = t // 30
            if step > last_step and same(totp.at(t), code):
                return step
        return None

    # ------------------------------------------------------------------ sessions and tokens

    def _issue(self, user_id: str, role: str, sid: str, now: int) -> tuple[str, int]:
        access = sign({"sub": user_id, "sid": sid, "role": role, "iat": now,
                       "exp": now + self.s.access_token_ttl_s, "jti": new_id()})
        return access, self.s.access_token_ttl_s

    def _new_session(self, user: dict[str, Any], device: Optional[m.Device], now: int,
                     factor: str) -> tuple[dict[str, Any], str]:
        sid = new_id()
        secret = new_token()
        absolute = now + self.s.refresh_absolute_ttl_s
        session = {
            "session_id": sid, "user_id": user["user_id"], "role": user["role"], "second_factor": factor,
            "device_id": device.id if device else None, "device_name": device.name if device else None,
            "created_at": now, "last_used_at": now, "refresh_hash": keyed_hash("refresh", sid, secret),
            "prev_hashes": [], "generation": 1, "revoked": False, "absolute_expiry": absolute,
            "idle_expiry": min(absolute, now + self.s.refresh_idle_ttl_s), "expires_at": absolute + 86400,
        }
        return session, f"{sid}.{secret}"

    def _token_pair(self, session: dict[str, Any], refresh: str, now: int) -> m.TokenPair:
        access, ttl = self._issue(session["user_id"], session["role"], session["session_id"], now)
        return m.TokenPair(access_token=access, expires_in=ttl, refresh_token=refresh,
                           refresh_expires_at=_iso(session["absolute_expiry"]), session_id=session["session_id"])

    @staticmethod
    def _alive(s: dict[str, Any], now: int) -> bool:
        return not s["revoked"] and s["absolute_expiry"] > now and s["idle_expiry"] > now

    def _live_sessions(self, user_id: str, now: int) -> list[dict[str, Any]]:
        """The user's live sessions. Lapsed ones found in the index are taken out of it on the way,
        so history never piles up in what logic reads."""
        indexed = store.user_sessions(user_id)
        lapsed = [s["session_id"] for s in indexed if not self._alive(s, now)]
        if lapsed:
            store.revoke_sessions(lapsed, "expired", now)
        return [s for s in indexed if self._alive(s, now)]

    def _tidy_sessions(self, user_id: str, keep: dict[str, Any], now: int) -> None:
        """One session per device, and at most MAX_SESSIONS live ones (oldest go first)."""
        live = [s for s in self._live_sessions(user_id, now) if s["session_id"] != keep["session_id"]]
        drop = [s for s in live if keep.get("device_id") and s.get("device_id") == keep["device_id"]]
        rest = sorted((s for s in live if s not in drop), key=lambda s: s["created_at"])
        overflow = len(rest) + 1 - MAX_SESSIONS
        if overflow > 0:
            drop += rest[:overflow]
        store.revoke_sessions([s["session_id"] for s in drop], "replaced", now)

    def authorize(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Claims of a usable access token and its live session; TokenError naming why not.
        The role and second factor come from the session, so changes apply at once."""
        now = self._now()
        claims = verify(token, now)
        session = store.get_session(claims["sid"])
        if session is None or session["revoked"] or session["absolute_expiry"] <= now:
            raise TokenError("session_revoked")
        return claims, session

    def refresh(self, req: m.RefreshRequest) -> m.TokenPair:
        now = self._now()
        sid, _, secret = req.refresh_token.partition(".")
        if not secret or len(sid) != 26:
            raise unauthorized("refresh_invalid")
        session = store.get_session(sid)
        if session is None or session["revoked"]:
            raise unauthorized("refresh_invalid")
        presented = keyed_hash("refresh", sid, secret)
        if any(same(presented, h) for h in session.get("prev_hashes", [])):
            store.revoke_session(sid, "refresh_reuse", now)
            log.warning("session.refresh_reuse", user_id=session["user_id"], session_id=sid)
            raise unauthorized("refresh_invalid")
        if not same(presented, session["refresh_hash"]):
            raise unauthorized("refresh_invalid")
        if session["absolute_expiry"] <= now or session["idle_expiry"] <= now:
            raise unauthorized("refresh_invalid")
        new_secret = new_token()
        previous = (session.get("prev_hashes", []) + [session["refresh_hash"]])[-20:]
        updated = store.rotate_refresh(sid, presented, keyed_hash("refresh", sid, new_secret), previous, now,
                                       min(session["absolute_expiry"], now + self.s.refresh_idle_ttl_s))
        if updated is None:
            # Someone rotated it between our read and write: the same token used twice.
            store.revoke_session(sid, "refresh_reuse", now)
            log.warning("session.refresh_reuse", user_id=session["user_id"], session_id=sid)
            raise unauthorized("refresh_invalid")
        return self._token_pair(updated, f"{sid}.{new_secret}", now)

    def logout(self, caller: Any) -> None:
        store.revoke_session(caller.session_id, "logout", self._now(), user_id=caller.user_id)
        log.event("session.logout", user_id=caller.user_id, session_id=caller.session_id)

    def list_sessions(self, caller: Any) -> m.SessionList:
        now = self._now()
        items = [
            m.SessionView(session_id=s["session_id"], device_name=s.get("device_name"),
                          created_at=_iso(s["created_at"]), last_used_at=_iso(s["last_used_at"]),
                          expires_at=_iso(s["absolute_expiry"]), current=s["session_id"] == caller.session_id)
            for s in self._live_sessions(caller.user_id, now)
        ]
        items.sort(key=lambda v: v.last_used_at, reverse=True)
        return m.SessionList(items=items)

    def revoke(self, caller: Any, session_id: str) -> None:
        if not is_ulid(session_id) or not store.revoke_session(session_id, "revoked_by_user", self._now(),
                                                               user_id=caller.user_id):
            raise not_found()
        log.event("session.revoked", user_id=caller.user_id, session_id=session_id)

    def _revoke_all(self, user_id: str, reason: str, now: int, except_sid: Optional[str] = None) -> int:
        """Revoke every live session of a user (but ``except_sid``), however many: batched, paged."""
        indexed = store.user_sessions(user_id)
        return store.revoke_sessions([s["session_id"] for s in indexed
                                      if not s["revoked"] and s["session_id"] != except_sid], reason, now)

    # ------------------------------------------------------------------ sign-up

    def sign_up(self, req: m.SignUpRequest, client: str) -> m.ChallengeResponse:
        now = self._now()
        if req.consent.version != self.s.consent_version_current:
            from chalicelib.core.errors import field_invalid

            raise field_invalid("consent.version", "consent_outdated",
                                f"accept the current consent version {self.s.consent_version_current}")
        passwords.refuse_weak(req.password, "password", phone=req.phone, names=(req.first_name, req.last_name),
                              birth_date=req.birth_date)
        self._sms_allowed(req.phone, client, now, "signup")
        password_hash = hash_password(req.password)  # always, so both branches cost the same
        existing = store.user_id_for_phone(req.phone)
        if existing:
            ch, _ = self._new_challenge("signup", req.phone, now, req.language, dead=True)
            self.sms.send(req.phone, sms_text("signup_exists", req.language))
            log.event("signup.existing_phone")
        else:
            pending = {
                "first_name": req.first_name, "last_name": req.last_name, "birth_date": req.birth_date.isoformat(),
                "password_hash": password_hash, "consent_version": req.consent.version, "consent_at": now,
                "language": req.language, "role": req.role,
            }
            ch, code = self._new_challenge("signup", req.phone, now, req.language, pending=pending)
            self.sms.send(req.phone, sms_text("signup", req.language, code=code))
            log.event("signup.started", challenge_id=ch["challenge_id"])
        return self._challenge_response(ch)

    def verify_sign_up(self, req: m.VerifySignUpRequest) -> m.TokenPair:
        now = self._now()
        ch = self._spend_attempt(req.challenge_id, "signup", now)
        ok, _ = self._second_factor_ok(ch, req.code, None, now)
        if not ok:
            raise self._wrong_code(ch)
        p = ch["pending"]
        user = {
            "user_id": new_id(), "role": p.get("role", "patient"), "status": "active", "phone": ch["phone"],
            "first_name": p["first_name"], "last_name": p["last_name"], "birth_date": p["birth_date"],
            "language": p["language"], "password_hash": p["password_hash"],
            "consent_version": p["consent_version"], "consent_at": p["consent_at"],
            "mfa_method": "sms", "recovery_hashes": [], "totp_last_step": 0,
            "created_at": now, "updated_at": now, "version": 1,
        }
        session, refresh = self._new_session(user, req.device, now, "sms")
        # The phone's code was verified this moment: a fresh second factor, so the new account can
        # enrol an authenticator app at once (staff must) without a second SMS inside the cooldown.
        session["step_up_until"] = now + self.s.step_up_ttl_s
        session["step_up_via"] = "signup"  # enough to enrol a factor, not to move the phone or remove one
        tx = db.Tx()
        store.tx_consume_challenge(tx, ch["challenge_id"], ch["attempts"])
        store.tx_create_user(tx, user)
        store.tx_open_session(tx, session)
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.any("challenge"):
                raise AppError(code="challenge_closed", status=400) from None
            raise conflict("account_exists") from None
        log.event("signup.completed", user_id=user["user_id"])
        pair = self._token_pair(session, refresh, now)
        pair.device_token = devices.issue(user["user_id"], None, now, self.s.device_token_ttl_s)
        return pair

    def resend(self, challenge_id: str, client: str) -> m.ChallengeResponse:
        now = self._now()
        if not is_ulid(challenge_id):
            raise not_found()
        ch = store.get_challenge(challenge_id)
        if ch is None or ch["used"] or ch["method"] != "sms":
            raise AppError(code="challenge_closed", status=400)
        if now - ch["sent_at"] < self.s.sms_resend_cooldown_s:
            from chalicelib.core.errors import too_many

            raise too_many("resend_too_soon", ch["sent_at"] + self.s.sms_resend_cooldown_s - now)
        self._sms_allowed(ch["phone"], client, now, ch["purpose"])
        code = new_code()
        secret = new_token() if ch.get("dead") else code
        expires = now + self.s.code_ttl_s
        if not store.replace_code(challenge_id, keyed_hash("challenge", challenge_id, secret), now, expires,
                                  self.s.sms_resend_cooldown_s):
            raise AppError(code="challenge_closed", status=400)
        lang = ch.get("lang", i18n.DEFAULT)
        if ch.get("dead"):
            if ch["purpose"] == "signup":
                self.sms.send(ch["phone"], sms_text("signup_exists", lang))
        else:
            self.sms.send(ch["phone"], sms_text(ch["purpose"], lang, code=code))
        ch.update(sent_at=now, expires_at=expires)
        return self._challenge_response(ch)

    # ------------------------------------------------------------------ login

    def _login_parts(self, client: str, device_id: Optional[str]) -> list[ratelimit.Part]:
        """The counters one sign-in attempt spends, all in the phone's window item: a device that proved
        itself (a device token from an earlier sign-in) has its own counter and nothing else, so no
        stranger can slow it; any other client spends its (phone, client) counter and the phone's
        counter for unseen clients."""
        s = self.s
        if device_id:
            return [ratelimit.Part(ratelimit.part_attr("d", device_id), s.login_failures_per_device_window,
                                   "login_throttled")]
        return [ratelimit.Part("hits", s.login_failures_per_account_window, "login_throttled"),
                ratelimit.Part(ratelimit.part_attr("c", client), s.login_failures_per_window, "login_throttled")]

    def login(self, req: m.LoginRequest, client: str) -> m.ChallengeResponse:
        """Password, then a second factor. Each attempt is counted before the password is checked (one
        conditional update per counter item) and given back when the password was right, so only
        failures stay counted and parallel guesses cannot pass a limit. Unknown phones take the same
        path, the same counters and the same answers. DynamoDB calls: phone, the phone's counters, the
        address counter (clients without a device token), the user, and one transaction (the
        challenge, its SMS limits, the counts given back)."""
        now = self._now()
        uid = store.user_id_for_phone(req.phone)
        device_id = devices.verify(req.device_token, uid, now) if uid and req.device_token else None
        parts = self._login_parts(client, device_id)
        try:
            ratelimit.reserve_parts("login", req.phone, self.login_window_s, now, parts)
            if not device_id:
                try:
                    ratelimit.hit(self.login_address, client, now)
                except AppError:
                    self._give_back(req.phone, client, parts, now, address=False)
                    raise
        except AppError:
            log.warning("login.throttled")
            raise
        user = store.get_user(uid) if uid else None
        if not password_matches(user["password_hash"] if user else None, req.password):
            log.event("login.failed", user_id=user["user_id"] if user else None, known_device=bool(device_id))
            raise unauthorized("invalid_credentials")
        assert user is not None
        lang = user.get("language", i18n.DEFAULT)
        totp = user.get("mfa_method") == "totp"
        sms_limits = [] if totp else [(self.sms_per_phone["login"], user["phone"])]
        if not totp and not device_id:
            sms_limits.append((self.sms_per_client, client))
        made: dict[str, Any] = {}

        def build() -> db.Tx:
            tx = db.Tx()
            tx.add("rate-refund:login", ratelimit.refund_parts_op("login", req.phone, self.login_window_s, now, parts))
            if not device_id:
                ratelimit.tx_refund(tx, self.login_address, client, now)
            for limit, subject in sms_limits:
                ratelimit.tx_hit(tx, limit, subject, now)
            extra: dict[str, Any] = {"device_id": device_id} if device_id else {}
            made["ch"], made["code"] = self._new_challenge(
                "login", user["phone"], now, lang, user_id=user["user_id"], method="totp" if totp else "sms",
                tx=tx, **extra)
            return tx

        try:
            ratelimit.commit_retrying(build)
        except db.TxCancelled as exc:
            self._give_back(req.phone, client, parts, now, address=not device_id)  # the password was right
            ratelimit.raise_for(exc, sms_limits, now)
            raise
        ch = made["ch"]
        if not totp:
            self.sms.send(user["phone"], sms_text("login", lang, code=made["code"]))
        log.event("login.password_ok", user_id=user["user_id"], second_factor=ch["method"],
                  known_device=bool(device_id))
        return self._challenge_response(ch)

    def _give_back(self, phone: str, client: str, parts: list[ratelimit.Part], now: int, address: bool) -> None:
        tx = db.Tx().add("rate-refund:login", ratelimit.refund_parts_op("login", phone, self.login_window_s, now,
                                                                          parts))
        if address:
            ratelimit.tx_refund(tx, self.login_address, client, now)
        tx.commit()

    # ------------------------------------------------------------------ second factors, per account

    def _reserve_second_factor(self, user_id: str, now: int) -> dict[str, Any]:
        """Count one second-factor try against the account before checking it (one conditional
        update that returns the user), across all its challenges: refused with 429 and Retry-After
        while the escalating delay runs, and with 403 ``second_factor_locked`` once
        ``second_factor_max_failures`` consecutive tries failed (the account then needs a password
        reset by SMS). A right code sets the count back to 0 in the transaction that signs in."""
        user = store.reserve_second_factor(user_id, self.s.second_factor_max_failures, now)
        if user is not None:
            return user
        current = store.get_user(user_id)
        if current is None:
            raise AppError(code="challenge_closed", status=400)
        if int(current.get("mfa_fails", 0)) >= self.s.second_factor_max_failures:
            log.warning("mfa.locked", user_id=user_id)
            raise forbidden("second_factor_locked")
        log.warning("mfa.throttled", user_id=user_id)
        raise too_many("second_factor_throttled", int(current.get("mfa_wait_until", now)) - now)

    def _second_factor_failed(self, user: dict[str, Any], now: int) -> None:
        """After a wrong code: past the free tries, the next one waits (doubling up to the cap); the
        owner is told by SMS when the delay begins and when the account locks (an event with the change)."""
        fails = int(user.get("mfa_fails", 0))
        free = self.s.second_factor_free_failures
        if fails <= free and fails < self.s.second_factor_max_failures:
            return
        wait = min(self.s.second_factor_first_delay_s * 2 ** max(0, fails - free - 1), self.s.second_factor_max_delay_s)
        tx = db.Tx()
        store.tx_second_factor_wait(tx, user["user_id"], now + wait)
        if fails == free + 1 or fails == self.s.second_factor_max_failures:
            notice = "second_factor_locked" if fails >= self.s.second_factor_max_failures else "second_factor_delay"
            tx.event("identity.owner_notice", {"user_id": user["user_id"], "notice": notice, "phone": user["phone"]})
        try:
            tx.commit()
        except db.TxCancelled:  # the account was deleted meanwhile: nothing to slow down or tell
            pass
        log.event("mfa.failures", user_id=user["user_id"], consecutive=fails)

    def _second_factor_ok_op(self, tx: db.Tx, user: dict[str, Any], changes: dict[str, Any]) -> None:
        """The user's part of a sign-in or step-up transaction: what the code changed, and the failure
        count back to 0."""
        if changes:
            store.tx_update_user(tx, user["user_id"], {**changes, "mfa_fails": 0, "mfa_wait_until": 0},
                                 user["version"])
        else:
            store.tx_reset_second_factor(tx, user["user_id"])

    def tell_owner(self, data: dict[str, Any]) -> None:
        """Event consumer: an SMS to the account's owner (limits hit, a phone change under way)."""
        user = store.get_user(data["user_id"])
        if user is None:
            return
        lang = user.get("language", i18n.DEFAULT)
        extra = {"ending": data["ending"]} if "ending" in data else {}
        self.sms.send(data.get("phone") or user["phone"], sms_text(data["notice"], lang, **extra))
        log.event("account.owner_told", user_id=user["user_id"], notice=data["notice"])

    def verify_login(self, req: m.VerifyLoginRequest) -> m.TokenPair:
        now = self._now()
        ch = self._spend_attempt(req.challenge_id, "login", now)
        if not ch.get("user_id"):
            raise AppError(code="challenge_closed", status=400)
        user = self._reserve_second_factor(ch["user_id"], now)
        ok, changes = self._second_factor_ok(ch, req.code, user, now)
        if not ok:
            self._second_factor_failed(user, now)
            raise self._wrong_code(ch)
        session, refresh = self._new_session(user, req.device, now, ch["method"])
        tx = db.Tx()
        store.tx_consume_challenge(tx, ch["challenge_id"], ch["attempts"])
        store.tx_open_session(tx, session)
        self._second_factor_ok_op(tx, user, changes)
        self._commit_spending_code(tx)
        self._tidy_sessions(user["user_id"], session, now)
        log.event("login.completed", user_id=user["user_id"], session_id=session["session_id"],
                  second_factor=ch["method"])
        pair = self._token_pair(session, refresh, now)
        pair.device_token = devices.issue(user["user_id"], ch.get("device_id"), now, self.s.device_token_ttl_s)
        return pair

    # ------------------------------------------------------------------ password reset

    def request_password_reset(self, req: m.PasswordResetRequest, client: str) -> m.ChallengeResponse:
        now = self._now()
        self._sms_allowed(req.phone, client, now, "password_reset")
        uid = store.user_id_for_phone(req.phone)
        user = store.get_user(uid) if uid else None
        lang = user.get("language", i18n.DEFAULT) if user else i18n.DEFAULT
        ch, code = self._new_challenge("password_reset", req.phone, now, lang,
                                       user_id=user["user_id"] if user else None, dead=user is None)
        if user:
            self.sms.send(req.phone, sms_text("password_reset", lang, code=code))
        log.event("password_reset.requested", challenge_id=ch["challenge_id"])
        return self._challenge_response(ch)

    def confirm_password_reset(self, req: m.PasswordResetConfirm) -> None:
        now = self._now()
        ch = self._spend_attempt(req.challenge_id, "password_reset", now)
        ok, _ = self._second_factor_ok(ch, req.code, None, now)
        if not ok:
            raise self._wrong_code(ch)
        user = store.get_user(ch["user_id"]) if ch.get("user_id") else None
        if user is not None:
            self._refuse_personal(req.new_password, user)
        password_hash = hash_password(req.new_password)
        for attempt in range(3):
            if attempt:
                user = store.get_user(ch["user_id"])
            if user is None:
                raise AppError(code="challenge_closed", status=400)
            tx = db.Tx()
            store.tx_consume_challenge(tx, ch["challenge_id"], ch["attempts"])
            # the recovery path: a locked or slowed second factor starts afresh with the new password
            store.tx_update_user(tx, user["user_id"], {"password_hash": password_hash, "updated_at": now,
                                                       "mfa_fails": 0, "mfa_wait_until": 0}, user["version"])
            try:
                tx.commit()
                break
            except db.TxCancelled as exc:
                if exc.any("challenge") or not exc.any("user"):
                    raise AppError(code="challenge_closed", status=400) from None
                # the profile changed meanwhile (another device): read it again, the code still holds
        else:
            raise conflict("version_conflict")
        self._revoke_all(user["user_id"], "password_reset", now)
        log.event("password_reset.completed", user_id=user["user_id"])

    # ------------------------------------------------------------------ profile

    def _user(self, caller: Any) -> dict[str, Any]:
        user = store.get_user(caller.user_id)
        if user is None:
            raise not_found()
        return user

    @staticmethod
    def profile(user: dict[str, Any]) -> m.Profile:
        return m.Profile(
            user_id=user["user_id"], role=user["role"], phone=user["phone"], first_name=user["first_name"],
            last_name=user["last_name"], birth_date=user.get("birth_date"), language=user.get("language", "ru"),
            second_factor=user.get("mfa_method", "sms"), recovery_codes_left=len(user.get("recovery_hashes", [])),
            consent={"version": user.get("consent_version"), "accepted_at": _iso(int(user.get("consent_at", 0)))},
            created_at=_iso(user["created_at"]), version=user["version"],
        )

    def me(self, caller: Any) -> m.Profile:
        return self.profile(self._user(caller))

    def patch_me(self, caller: Any, patch: m.ProfilePatch) -> m.Profile:
        changes = patch.model_dump(exclude_unset=True, exclude={"version"})
        if "birth_date" in changes and changes["birth_date"] is not None:
            changes["birth_date"] = changes["birth_date"].isoformat()
        if "birth_date" in changes and changes["birth_date"] is None:
            changes.pop("birth_date")
        version = patch.version
        if version is None:
            version = self._user(caller)["version"]
        if not changes:
            return self.me(caller)
        changes["updated_at"] = self._now()
        return self.profile(store.update_user(caller.user_id, changes, version))

    def set_role(self, phone: str, role: str) -> str:
        """Operator action (no HTTP route): give an account a role, effective at once in its sessions."""
        if role not in access.ROLES:
            raise ValueError(f"unknown role {role}")
        uid = store.user_id_for_phone(phone)
        user = store.get_user(uid) if uid else None
        if user is None:
            raise not_found()
        store.update_user(user["user_id"], {"role": role, "updated_at": self._now()}, user["version"])
        store.set_sessions_role([s["session_id"] for s in store.user_sessions(user["user_id"])
                                 if not s["revoked"]], role)
        log.event("account.role_changed", user_id=user["user_id"], role=role)
        return user["user_id"]

    # ------------------------------------------------------------------ step-up and sensitive changes

    def start_step_up(self, caller: Any, client: str) -> m.ChallengeResponse:
        now = self._now()
        user = self._user(caller)
        lang = user.get("language", i18n.DEFAULT)
        if user.get("mfa_method") == "totp":
            ch, _ = self._new_challenge("step_up", user["phone"], now, lang, user_id=user["user_id"],
                                        method="totp", session_id=caller.session_id)
        else:
            self._sms_allowed(user["phone"], client, now, "step_up")
            ch, code = self._new_challenge("step_up", user["phone"], now, lang, user_id=user["user_id"],
                                           session_id=caller.session_id)
            self.sms.send(user["phone"], sms_text("step_up", lang, code=code))
        return self._challenge_response(ch)

    def verify_step_up(self, caller: Any, req: m.StepUpVerify) -> dict[str, str]:
        now = self._now()
        ch = self._spend_attempt(req.challenge_id, "step_up", now)
        if ch.get("session_id") != caller.session_id or ch.get("user_id") != caller.user_id:
            raise AppError(code="challenge_closed", status=400)
        user = self._reserve_second_factor(caller.user_id, now)
        ok, changes = self._second_factor_ok(ch, req.code, user, now)
        if not ok:
            self._second_factor_failed(user, now)
            raise self._wrong_code(ch)
        until = now + self.s.step_up_ttl_s
        tx = db.Tx()
        store.tx_consume_challenge(tx, ch["challenge_id"], ch["attempts"])
        store.tx_grant_step_up(tx, caller.session_id, until)
        self._second_factor_ok_op(tx, user, changes)
        self._commit_spending_code(tx)
        return {"step_up_until": _iso(until)}

    @staticmethod
    def _commit_spending_code(tx: db.Tx) -> None:
        """Commit a transaction that consumes a code; any cancellation means the code can no longer
        complete it (used, raced, or the session or account moved on)."""
        tx.commit_or(AppError(code="challenge_closed", status=400))

    def _require_step_up(self, caller: Any, fresh_code: bool = False) -> None:
        access.require_step_up(caller, self._now(), fresh_code=fresh_code)

    @staticmethod
    def _refuse_personal(password: str, user: dict[str, Any]) -> None:
        birth = user.get("birth_date")
        passwords.refuse_weak(password, "new_password", phone=user.get("phone"),
                              names=(user.get("first_name", ""), user.get("last_name", "")),
                              birth_date=date.fromisoformat(birth) if birth else None)

    def change_password(self, caller: Any, req: m.PasswordChange) -> None:
        user = self._user(caller)
        self._refuse_personal(req.new_password, user)  # before the step-up grant is spent
        self._require_step_up(caller)
        now = self._now()
        store.update_user(caller.user_id, {"password_hash": hash_password(req.new_password), "updated_at": now},
                          user["version"])
        self._revoke_all(caller.user_id, "password_changed", now, except_sid=caller.session_id)
        log.event("password.changed", user_id=caller.user_id)

    def start_phone_change(self, caller: Any, req: m.PhoneChange, client: str) -> m.ChallengeResponse:
        """A code to the new number, after a fresh second factor (the sign-up grant does not do); the old
        number is told that the move is under way and how to stop it (an event with the challenge)."""
        self._require_step_up(caller, fresh_code=True)
        now = self._now()
        user = self._user(caller)
        lang = user.get("language", i18n.DEFAULT)
        self._sms_allowed(req.phone, client, now, "phone_change")
        tx = db.Tx()
        ch, code = self._new_challenge("phone_change", req.phone, now, lang, user_id=caller.user_id, tx=tx)
        tx.event("identity.owner_notice", {"user_id": caller.user_id, "notice": "phone_change_started",
                                           "phone": user["phone"], "ending": req.phone[-2:]})
        tx.commit()
        self.sms.send(req.phone, sms_text("phone_change", lang, code=code))
        return self._challenge_response(ch)

    def verify_phone_change(self, caller: Any, req: m.PhoneChangeVerify) -> m.Profile:
        now = self._now()
        ch = self._spend_attempt(req.challenge_id, "phone_change", now)
        if ch.get("user_id") != caller.user_id:
            raise AppError(code="challenge_closed", status=400)
        ok, _ = self._second_factor_ok(ch, req.code, None, now)
        if not ok:
            raise self._wrong_code(ch)
        user = self._user(caller)
        new_phone = ch["phone"]
        if new_phone == user["phone"]:
            raise conflict("phone_taken")
        tx = db.Tx()
        store.tx_consume_challenge(tx, ch["challenge_id"], ch["attempts"])
        store.tx_move_phone(tx, caller.user_id, user["phone"], new_phone)
        store.tx_update_user(tx, caller.user_id, {"phone": new_phone, "updated_at": now}, user["version"])
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.any("challenge"):
                raise AppError(code="challenge_closed", status=400) from None
            if exc.any("phone"):
                raise conflict("phone_taken") from None
            raise conflict("version_conflict") from None
        log.event("phone.changed", user_id=caller.user_id)
        return self.me(caller)

    def start_totp(self, caller: Any) -> m.TotpEnrolment:
        import pyotp

        self._require_step_up(caller)
        user = self._user(caller)
        if user.get("mfa_method") == "totp":
            raise conflict("totp_already_enrolled")
        secret = pyotp.random_base32()
        store.update_user(caller.user_id, {"totp_pending": secret}, user["version"])
        uri = pyotp.TOTP(secret).provisioning_uri(name=user["first_name"], issuer_name="Clinic")
        return m.TotpEnrolment(secret=secret, otpauth_uri=uri)

    def _new_recovery_codes(self, user_id: str) -> tuple[list[str], list[str]]:
        codes = []
        for _ in range(RECOVERY_CODES):
            raw = "".join(_secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
            codes.append(f"{raw[:5]}-{raw[5:]}")
        return codes, [keyed_hash("recovery", user_id, c) for c in codes]

    def confirm_totp(self, caller: Any, req: m.TotpConfirm) -> m.RecoveryCodes:
        user = self._user(caller)
        pending = user.get("totp_pending")
        if not pending:
            raise AppError(code="totp_not_enrolled", status=409)
        step = self._totp_step(pending, req.code, self._now(), 0)
        if step is None:
            raise AppError(code="invalid_code", status=400)
        codes, hashes = self._new_recovery_codes(caller.user_id)
        store.update_user(caller.user_id, {"mfa_method": "totp", "totp_secret": pending, "totp_last_step": step,
                                           "recovery_hashes": hashes, "updated_at": self._now()},
                          user["version"], remove=("totp_pending",))
        store.set_session_factor(caller.session_id, "totp")  # this session just proved the app
        log.event("mfa.totp_enrolled", user_id=caller.user_id)
        return m.RecoveryCodes(recovery_codes=codes)

    def remove_totp(self, caller: Any) -> None:
        self._require_step_up(caller, fresh_code=True)
        user = self._user(caller)
        if user.get("mfa_method") != "totp":
            raise AppError(code="totp_not_enrolled", status=409)
        store.update_user(caller.user_id, {"mfa_method": "sms", "recovery_hashes": [], "updated_at": self._now()},
                          user["version"], remove=("totp_secret", "totp_pending"))
        log.event("mfa.totp_removed", user_id=caller.user_id)

    def regenerate_recovery_codes(self, caller: Any) -> m.RecoveryCodes:
        self._require_step_up(caller)
        user = self._user(caller)
        if user.get("mfa_method") != "totp":
            raise AppError(code="totp_not_enrolled", status=409)
        codes, hashes = self._new_recovery_codes(caller.user_id)
        store.update_user(caller.user_id, {"recovery_hashes": hashes}, user["version"])
        return m.RecoveryCodes(recovery_codes=codes)
