"""Visit conclusions: written by the visit's doctor once the visit is completed, a draft until signed,
never changed once signed; an amendment is a new signed version pointing at the one it corrects.

A conclusion lives in the patient's card partition (``CONCL#<booking>#<version>``), sealed like every
entry (section ``conclusions``), so the whole card, conclusions included, is still one query. Booking is
read through booking's own access function (``booking.access.relation``) and store reader.
"""
from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any, Optional

from chalicelib.core import clock, db, log
from chalicelib.core.errors import AppError, FieldError, conflict, forbidden, not_found
from chalicelib.core.ids import is_ulid
from chalicelib.records import access, store
from chalicelib.records import models as m
from chalicelib.records.access import precondition_failed

if TYPE_CHECKING:
    from chalicelib.records.service import RecordsService

SECTION = "conclusions"
FIELDS = ("complaints", "findings", "diagnosis", "icd10", "recommendations", "follow_up_date", "observation_months")


def _aad(c: dict[str, Any]) -> str:
    return f"{c['patient_id']}|{SECTION}|{c['booking_id']}|{int(c['version'])}"


class Conclusions:
    def __init__(self, svc: "RecordsService") -> None:
        self.svc = svc

    # ------------------------------------------------------------------ reading

    def _open(self, c: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.svc.sealer.open(c["patient_id"], SECTION, _aad(c), c["sealed"]))

    def view(self, c: dict[str, Any]) -> dict[str, Any]:
        out = {"booking_id": c["booking_id"], "version": int(c["version"]), "revision": store.revision(c),
               "status": c["status"],
               "doctor_id": c["doctor_id"], "clinic_id": c["clinic_id"], "visit_start": c["visit_start"],
               "written_at": c["written_at"], **self._open(c)}
        for k in ("signed_at", "supersedes"):
            if c.get(k) is not None:
                out[k] = c[k]
        return out

    @staticmethod
    def current(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The latest version of each visit's conclusion."""
        latest: dict[str, dict[str, Any]] = {}
        for c in items:
            if c["booking_id"] not in latest or int(c["version"]) > int(latest[c["booking_id"]]["version"]):
                latest[c["booking_id"]] = c
        return sorted(latest.values(), key=lambda c: c["visit_start"])

    # ------------------------------------------------------------------ writing

    def _visit(self, caller: Any, bid: str) -> dict[str, Any]:
        """The completed visit of the calling doctor, or 404 (not theirs) / 409 (not completed)."""
        from chalicelib.booking import access as booking_access
        from chalicelib.booking import store as booking_store

        access.require_doctor(caller)
        b = booking_store.get_booking(bid) if is_ulid(bid) else None
        if b is None or booking_access.relation(caller, b, as_clinic=False) != "doctor":
            raise not_found()
        if b["status"] != "completed":
            raise conflict("visit_not_completed", "a conclusion follows a completed visit")
        return b

    def _checked(self, req: m.ConclusionIn, b: dict[str, Any], signing: bool) -> dict[str, Any]:
        data = req.model_dump(mode="json", exclude_none=True)
        errors = []
        if req.follow_up_date is not None and req.observation_months is not None:
            errors.append(FieldError("observation_months", "one_of", "a follow-up date or an observation period"))
        visit_day = date.fromisoformat(b["start_utc"][:10])
        if req.follow_up_date is not None and req.follow_up_date <= visit_day:
            errors.append(FieldError("follow_up_date", "not_after_visit", "a follow-up comes after the visit"))
        if signing:
            errors += [FieldError(f, "required", "required to sign") for f in m.SIGN_REQUIRED
                       if not (data.get(f) or "").strip()]
        if errors:
            raise AppError(code="validation_failed", status=422, errors=errors)
        return data

    def _item(self, caller: Any, b: dict[str, Any], version: int, status: str, data: dict[str, Any],
              rev: int, **extra: Any) -> dict[str, Any]:
        now = clock.iso(clock.now())
        c = {"patient_id": b["patient_id"], "booking_id": b["booking_id"], "version": version, "status": status,
             "rev": rev,
             "doctor_id": caller.user_id, "clinic_id": b["clinic_id"], "visit_start": b["start_utc"],
             "written_at": now, **({"signed_at": now} if status == "signed" else {}), **extra}
        if b.get("time_zone"):
            c["time_zone"] = b["time_zone"]
        if status == "signed":  # the last day of the observation, in clear: "my patients" lists by it ("" none)
            from chalicelib.records.patients import observation_end

            end = observation_end(b["start_utc"], b.get("time_zone"), data.get("follow_up_date"),
                                  data.get("observation_months"))
            c["observation_end"] = end.isoformat() if end else ""
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        return {**c, "sealed": self.svc.sealer.seal(c["patient_id"], SECTION, _aad(c), payload)}

    def _log_write(self, tx: db.Tx, caller: Any, c: dict[str, Any]) -> None:
        view = access.View("doctor", frozenset(), (), c["clinic_id"], caller.user_id)
        a = self.svc._access(caller, c["patient_id"], view, "write", [SECTION], None)
        a["booking_id"] = c["booking_id"]
        tx.put_new("access", store.access_item(a))

    @staticmethod
    def _expect(latest: Optional[dict[str, Any]], if_match: Optional[int]) -> None:
        """``If-Match``: the revision the doctor last read; anything else is 412 (someone wrote meanwhile)."""
        if if_match is not None and (latest is None or store.revision(latest) != if_match):
            raise precondition_failed()

    def _commit(self, tx: db.Tx, what: str, if_match: Optional[int] = None) -> None:
        try:
            tx.commit()
        except db.TxCancelled as exc:
            if exc.any("conclusion", "previous"):
                if if_match is not None:
                    raise precondition_failed() from None
                raise conflict("conclusion_signed", f"the conclusion is signed or changed meanwhile ({what})") from None
            raise

    def save_draft(self, caller: Any, bid: str, req: m.ConclusionIn,
                   if_match: Optional[int] = None) -> dict[str, Any]:
        b = self._visit(caller, bid)
        data = self._checked(req, b, signing=False)
        versions = store.conclusions_of_visit(b["patient_id"], bid)
        old = versions[-1] if versions else None
        self._expect(old, if_match)
        if old is not None and (len(versions) > 1 or old["status"] != "draft"):
            raise conflict("conclusion_signed", "a signed conclusion never changes; amend it")
        c = self._item(caller, b, 1, "draft", data, rev=store.revision(old) + 1 if old else 1)
        tx = db.Tx()
        store.save_draft_tx(tx, c, old)
        self._log_write(tx, caller, c)
        self._commit(tx, "draft", if_match)
        log.event("records.conclusion_saved", booking_id=bid)
        return self.view(c)

    def sign(self, caller: Any, bid: str, if_match: Optional[int] = None) -> dict[str, Any]:
        b = self._visit(caller, bid)
        versions = store.conclusions_of_visit(b["patient_id"], bid)
        if not versions:
            raise not_found()
        draft = versions[-1]
        self._expect(draft, if_match)
        if draft["status"] != "draft":
            raise conflict("conclusion_signed", "already signed")
        data = self._open(draft)
        self._checked(m.ConclusionIn.model_validate(data), b, signing=True)
        c = self._item(caller, b, 1, "signed", data, rev=store.revision(draft) + 1)
        tx = db.Tx()
        store.sign_tx(tx, draft, c)
        self._log_write(tx, caller, c)
        # notify plans the follow-up; analytics counts who signed which visit's conclusion when (never content)
        tx.event("records.conclusion_signed", {**_follow_up(b, data), "booking_id": bid, "clinic_id": c["clinic_id"],
                                               "doctor_id": c["doctor_id"], "signed_at": c["signed_at"]})
        self._commit(tx, "sign", if_match)
        log.event("records.conclusion_signed", booking_id=bid)
        return self.view(c)

    def amend(self, caller: Any, bid: str, req: m.ConclusionIn, if_match: Optional[int] = None) -> dict[str, Any]:
        b = self._visit(caller, bid)
        versions = store.conclusions_of_visit(b["patient_id"], bid)
        self._expect(versions[-1] if versions else None, if_match)
        if not versions or versions[-1]["status"] != "signed":
            raise conflict("conclusion_not_signed", "sign the conclusion first; a draft is simply edited")
        data = self._checked(req, b, signing=True)
        old = versions[-1]
        c = self._item(caller, b, int(old["version"]) + 1, "signed", data, rev=store.revision(old) + 1,
                       supersedes=int(old["version"]))
        tx = db.Tx()
        store.amend_tx(tx, old, c)
        self._log_write(tx, caller, c)
        tx.event("records.conclusion_amended", _follow_up(b, data))
        self._commit(tx, "amend", if_match)
        log.event("records.conclusion_amended", booking_id=bid, version=c["version"])
        return self.view(c)

    def of_visit(self, caller: Any, bid: str) -> dict[str, Any]:
        """Every version of a visit's conclusion: the visit's patient sees the signed ones, its doctor all."""
        from chalicelib.booking import access as booking_access
        from chalicelib.booking import store as booking_store

        if caller.role in ("clinic_admin", "platform_admin"):
            raise forbidden("role_not_allowed", "conclusions are for the visit's patient and doctor")
        b = booking_store.get_booking(bid) if is_ulid(bid) else None
        if b is None:
            raise not_found()
        relation = booking_access.relation(caller, b, as_clinic=False)  # 404 for anyone else
        versions = store.conclusions_of_visit(b["patient_id"], bid)
        if relation == "patient":
            versions = [v for v in versions if v["status"] == "signed"]
        if not versions:
            raise not_found()
        if relation != "patient":
            view = access.View("doctor", frozenset(), (), b["clinic_id"], caller.user_id)
            self.svc.log_read(caller, b["patient_id"], view, "read", [SECTION], None, booking_id=bid)
        return {"items": [self.view(v) for v in versions]}


def _follow_up(b: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What a conclusion's event says: the visit and its follow-up date or period (nothing medical)."""
    return {"booking_id": b["booking_id"], "patient_id": b["patient_id"], "clinic_id": b["clinic_id"],
            "doctor_id": b["doctor_id"], "follow_up_date": data.get("follow_up_date"),
            "observation_months": data.get("observation_months")}
