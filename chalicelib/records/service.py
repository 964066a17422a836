"""Use cases of the medical card: entries a patient keeps, grants that open them, the access log.

Who may see what is decided in ``records.access``; every read or write of card data by anyone other
than the patient leaves exactly one access-log item (a write: in the change's own transaction).
Health data is sealed by ``records.crypto`` before it is stored and opened only for what the caller
may see.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Optional

from chalicelib.clinics import access as clinic_access
from chalicelib.core import clock, db, log
from chalicelib.core.errors import AppError, FieldError, conflict, field_invalid, forbidden, not_found
from chalicelib.core.ids import is_ulid, new_id
from chalicelib.identity import access as identity_access
from chalicelib.records import access, store
from chalicelib.records import models as m
from chalicelib.records.crypto import Sealer


def _aad(e: dict[str, Any]) -> str:
    return f"{e['patient_id']}|{e['section']}|{e['entry_id']}|{int(e['version'])}"


def _latest_day(now: datetime) -> date:
    """The latest calendar date anywhere on Earth right now (UTC+14): a date after it is in the future."""
    return (now + timedelta(hours=14)).date()


class RecordsService:
    def __init__(self, settings: Any, sealer: Sealer, storage: Any = None) -> None:
        from chalicelib.records.conclusions import Conclusions
        from chalicelib.records.patients import CareRows

        self.settings = settings
        self.sealer = sealer
        self.storage = storage
        self.conclusions = Conclusions(self)
        self.care = CareRows(self)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _now() -> datetime:
        return clock.now()

    def _check_entry(self, section: str, req: m.Strict) -> dict[str, Any]:
        data = req.model_dump(mode="json", exclude_none=True)
        latest = _latest_day(self._now())
        errors = [FieldError(name, "in_future", "a date that has not come yet")
                  for name in m.PAST_DATES.get(section, ()) if getattr(req, name, None) and getattr(req, name) > latest]
        if section == "medications" and data.get("since") and data.get("until") and data["until"] < data["since"]:
            errors.append(FieldError("until", "before_since", "the end comes before the start"))
        if errors:
            raise AppError(code="validation_failed", status=422, errors=errors)
        return data

    def _seal(self, e: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        return {**e, "sealed": self.sealer.seal(e["patient_id"], e["section"], _aad(e), payload)}

    def _open(self, e: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.sealer.open(e["patient_id"], e["section"], _aad(e), e["sealed"]))

    def _entry_view(self, e: dict[str, Any]) -> dict[str, Any]:
        return {"entry_id": e["entry_id"], "section": e["section"], "version": int(e["version"]),
                "data": self._open(e), **({"deleted": True} if e.get("deleted") else {}),
                "created": {"at": e["created_at"], "by": e["created_by"], "role": e["created_role"]},
                "written": {"at": e["written_at"], "by": e["written_by"], "role": e["written_role"]}}

    def _card_view(self, pid: str, entries: list[dict[str, Any]], view: access.View,
                   conclusions: list[dict[str, Any]],
                   documents: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
        entries = [e for e in entries if not e.get("deleted")]
        sections: dict[str, list[dict[str, Any]]] = {}
        for s in m.SECTIONS:
            if view.is_patient or s in view.sections or any(e["section"] == s and view.sees(e) for e in entries):
                sections[s] = []
        for e in sorted(entries, key=lambda e: e["entry_id"]):
            if view.sees(e):
                sections[e["section"]].append(self._entry_view(e))
        shown = [self.conclusions.view(c) for c in self.conclusions.current(conclusions) if view.sees_conclusion(c)]
        docs = [self._document_view(d) for d in sorted(documents or [], key=lambda d: d["document_id"])
                if d["status"] == "available" and view.sees_document(d)]
        return {"patient_id": pid, "sections": sections, "conclusions": shown, "documents": docs}

    def _access(self, caller: Any, pid: str, view: access.View, action: str, sections: list[str],
                entries: Optional[list[str]] = None) -> dict[str, Any]:
        now = self._now()
        return {"access_id": new_id(), "patient_id": pid, "at": clock.iso(now), "actor_id": caller.user_id,
                "actor_role": caller.role, "clinic_id": view.clinic_id, "action": action,
                "sections": sorted(set(sections)), "entries": entries or None, "grant_ids": list(view.grant_ids)}

    def log_read(self, caller: Any, pid: str, view: access.View, action: str, sections: list[str],
                 entries: Optional[list[str]] = None, **extra: Any) -> dict[str, Any]:
        """A read of card data by someone other than the patient: its access-log item and the
        ``records.card_read`` event (notify tells the patient), in one transaction (one write)."""
        a = {**self._access(caller, pid, view, action, sections, entries), **extra}
        tx = db.Tx()
        tx.put_new("access", store.access_item(a))
        tx.event("records.card_read", {"patient_id": pid, "reader_id": caller.user_id, "reader_role": caller.role,
                                       "access_id": a["access_id"], "action": action, "clinic_id": view.clinic_id,
                                       "grant_ids": list(view.grant_ids)})
        tx.commit()
        return a

    def _view(self, caller: Any, pid: str, grants: list[dict[str, Any]]) -> access.View:
        return access.decide(caller, pid, grants, self._now(), clinic_access.clinics_of_doctor)

    # ------------------------------------------------------------------ the patient's card

    def my_card(self, caller: Any) -> dict[str, Any]:
        access.require_patient(caller)
        parts = store.read_card_all(caller.user_id)
        return self._card_view(caller.user_id, parts["entry"], access.View("patient", frozenset(m.GRANTABLE)),
                               parts["conclusion"], parts["document"])

    def _new_entry(self, caller: Any, pid: str, section: str, data: dict[str, Any]) -> dict[str, Any]:
        now = clock.iso(self._now())
        e = {"patient_id": pid, "section": section, "entry_id": new_id(), "version": 1,
             "created_at": now, "created_by": caller.user_id, "created_role": caller.role,
             "written_at": now, "written_by": caller.user_id, "written_role": caller.role}
        return self._seal(e, data)

    CLASH_RETRIES = 6

    def _commit_entry(self, tx: db.Tx, section: str) -> None:
        """Commit an entry's transaction. A clash with another transaction on the section's counter (entries
        added at once) is tried again; a failed condition is the caller's answer (full, or edited meanwhile)."""
        import random
        import time

        for attempt in range(self.CLASH_RETRIES):
            try:
                tx.commit()
                return
            except db.TxCancelled as exc:
                if exc.condition_failed("count"):
                    raise conflict("section_full", f"a section holds at most "
                                                   f"{self.settings.records_entries_per_section_max} entries") from None
                if exc.any("entry", "history"):
                    raise conflict("version_conflict", "the entry changed meanwhile; read it again") from None
                if attempt == self.CLASH_RETRIES - 1:
                    raise conflict("version_conflict", "the card is busy; try again") from None
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # jitter apart from the other writers

    def add_entry(self, caller: Any, section: str, req: m.Strict) -> dict[str, Any]:
        access.require_patient(caller)
        data = self._check_entry(section, req)
        e = self._new_entry(caller, caller.user_id, section, data)
        tx = db.Tx()
        store.add_entry_tx(tx, e, self.settings.records_entries_per_section_max)
        self._commit_entry(tx, section)
        log.event("records.entry_added", section=section, entry_id=e["entry_id"])
        return self._entry_view(e)

    def _current(self, caller: Any, section: str, eid: str, if_match: Optional[int]) -> dict[str, Any]:
        """The caller's live entry at the version ``If-Match`` names (412 otherwise); deleted ones are 404."""
        old = store.get_entry(caller.user_id, section, eid) if is_ulid(eid) else None
        if old is None or old.get("deleted"):
            raise not_found()
        if if_match is not None and int(old["version"]) != if_match:
            raise access.precondition_failed()
        return old

    def _next_version(self, caller: Any, old: dict[str, Any]) -> dict[str, Any]:
        now = clock.iso(self._now())
        new = {k: v for k, v in old.items() if k not in ("PK", "SK", "type", "sealed")}
        new.update(version=int(old["version"]) + 1, written_at=now, written_by=caller.user_id, written_role=caller.role)
        return new

    def _commit_versioned(self, tx: db.Tx, section: str, if_match: Optional[int]) -> None:
        try:
            self._commit_entry(tx, section)
        except AppError as exc:
            if if_match is not None and exc.code == "version_conflict":
                raise access.precondition_failed() from None
            raise

    def edit_entry(self, caller: Any, section: str, eid: str, req: m.Strict,
                   if_match: Optional[int] = None) -> dict[str, Any]:
        access.require_patient(caller)
        data = self._check_entry(section, req)
        old = self._current(caller, section, eid, if_match)
        new = self._seal(self._next_version(caller, old), data)
        tx = db.Tx()
        store.edit_entry_tx(tx, old, new)
        self._commit_versioned(tx, section, if_match)
        log.event("records.entry_edited", section=section, entry_id=eid, version=new["version"])
        return self._entry_view(new)

    def delete_entry(self, caller: Any, section: str, eid: str, if_match: Optional[int] = None) -> None:
        """The patient deletes their own entry: a tombstone version (no content) replaces it, the earlier
        versions stay in its history, the card no longer shows it and the section's count is freed. Entries
        a doctor wrote into the card are medical records kept for the legal period: 403."""
        access.require_patient(caller)
        old = self._current(caller, section, eid, if_match)
        if old["created_by"] != caller.user_id:
            raise forbidden("entry_kept", "an entry a doctor wrote is kept for the legal retention period")
        tomb = self._seal({**self._next_version(caller, old), "deleted": True}, {})
        tx = db.Tx()
        store.delete_entry_tx(tx, old, tomb)
        self._commit_versioned(tx, section, if_match)
        log.event("records.entry_deleted", section=section, entry_id=eid, version=tomb["version"])

    def entry_versions(self, caller: Any, section: str, eid: str) -> dict[str, Any]:
        """The entry's earlier versions, oldest first, then the current one."""
        access.require_patient(caller)
        current = store.get_entry(caller.user_id, section, eid) if is_ulid(eid) else None
        if current is None:
            raise not_found()
        older = store.entry_versions(caller.user_id, section, eid)
        return {"items": [self._entry_view(v) for v in older] + [self._entry_view(current)]}

    # ------------------------------------------------------------------ grants

    @staticmethod
    def _grant_view(g: dict[str, Any], now: datetime) -> dict[str, Any]:
        status = g["status"] if g["status"] == "revoked" or access.live(g, now) else "expired"
        out = {"grant_id": g["grant_id"], "sections": g.get("sections") or list(m.GRANTABLE),
               "until": g["until"], "status": status, "created_at": g["created_at"]}
        out["doctor_id" if g["grantee_kind"] == "doctor" else "clinic_id"] = g["grantee_id"]
        if g.get("revoked_at"):
            out["revoked_at"] = g["revoked_at"]
        return out

    def grant(self, caller: Any, req: m.GrantIn) -> dict[str, Any]:
        access.require_patient(caller)
        now = self._now()
        if (req.doctor_id is None) == (req.clinic_id is None):
            raise field_invalid("doctor_id", "one_grantee", "name exactly one of doctor_id and clinic_id")
        if req.sections is not None and len(set(req.sections)) != len(req.sections):
            raise field_invalid("sections", "duplicate", "each section once")
        if req.until <= now:
            raise field_invalid("until", "in_past", "a grant ends in the future")
        if req.until > now + timedelta(days=self.settings.records_grant_max_days):
            raise field_invalid("until", "too_far", f"at most {self.settings.records_grant_max_days} days ahead")
        if req.doctor_id is not None and not clinic_access.clinics_of_doctor(req.doctor_id):
            raise field_invalid("doctor_id", "unknown_doctor", "no doctor with this id works in a clinic")
        kind, grantee = ("doctor", req.doctor_id) if req.doctor_id else ("clinic", req.clinic_id)
        g = {"grant_id": new_id(), "patient_id": caller.user_id, "grantee_kind": kind, "grantee_id": grantee,
             "sections": sorted(req.sections) if req.sections else None, "until": clock.iso(req.until),
             "status": "active", "created_at": clock.iso(now)}
        tx = db.Tx()
        tx.put_new("grant", store.grant_item(g))
        # notify tells the patient; "my patients" gains the row (records/jobs.py)
        tx.event("records.grant_created", _grant_event(g))
        tx.commit()
        log.event("records.grant_created", grant_id=g["grant_id"], grantee_kind=kind)
        return self._grant_view(g, now)

    def grants(self, caller: Any, q: m.Page) -> dict[str, Any]:
        access.require_patient(caller)
        items, cursor = store.grants_page(caller.user_id, q.limit, q.cursor)
        now = self._now()
        return {"items": [self._grant_view(g, now) for g in items], "next_cursor": cursor}

    def revoke(self, caller: Any, gid: str) -> None:
        access.require_patient(caller)
        g = store.get_grant(caller.user_id, gid) if is_ulid(gid) else None
        if g is None:
            raise not_found()
        if g["status"] == "revoked":
            return
        tx = db.Tx()
        store.revoke_tx(tx, caller.user_id, gid, clock.iso(self._now()))
        tx.event("records.grant_revoked", _grant_event(g))
        try:
            tx.commit()
        except db.TxCancelled:
            pass  # revoked meanwhile: the outcome the patient asked for
        log.event("records.grant_revoked", grant_id=gid)

    # ------------------------------------------------------------------ the doctor's side

    def shared_card(self, caller: Any, pid: str) -> dict[str, Any]:
        """A patient's card as the calling doctor may see it: one query of the card, the doctor's clinics
        where a whole-clinic grant could apply, and one access-log item."""
        if not is_ulid(pid):
            raise not_found()
        parts = store.read_card_all(pid)
        view = self._view(caller, pid, parts["grant"])
        card = self._card_view(pid, parts["entry"], view, parts["conclusion"], parts["document"])
        if view.is_patient:
            return card
        if not view.sections and not any(card["sections"].values()) and not card["conclusions"] \
                and not card["documents"]:
            raise not_found()  # nothing opened and nothing of their own: the card is not revealed
        read = list(card["sections"]) + [k for k in ("conclusions", "documents") if card[k]]
        self.log_read(caller, pid, view, "read", read)
        log.event("records.card_read", sections=len(card["sections"]))
        return card

    def doctor_add_entry(self, caller: Any, pid: str, section: str, req: m.Strict) -> dict[str, Any]:
        if not is_ulid(pid):
            raise not_found()
        access.require_doctor(caller)
        data = self._check_entry(section, req)
        _, grants, _ = store.read_card(pid)
        view = self._view(caller, pid, grants)
        if not view.may_write(section):
            if view.sections:
                raise forbidden("section_not_shared", "this section is not opened to you")
            raise not_found()
        e = self._new_entry(caller, pid, section, data)
        tx = db.Tx()
        store.add_entry_tx(tx, e, self.settings.records_entries_per_section_max)
        tx.put_new("access", store.access_item(self._access(caller, pid, view, "write", [section], [e["entry_id"]])))
        self._commit_entry(tx, section)
        log.event("records.entry_added", section=section, entry_id=e["entry_id"])
        return self._entry_view(e)

    def my_patients(self, caller: Any, q: m.Page) -> dict[str, Any]:
        """Patients with a live grant to the calling doctor (or their clinic) or under their observation, with the
        grant's scope and end, the observation's end and the next visit: one query per page (records/patients.py)."""
        return self.care.page(caller, q)

    # ------------------------------------------------------------------ documents

    def _document_view(self, d: dict[str, Any]) -> dict[str, Any]:
        aad = f"{d['patient_id']}|documents|{d['document_id']}|1"
        name = self.sealer.open(d["patient_id"], "documents", aad, d["sealed"]).decode()
        return {"document_id": d["document_id"], "name": name, "content_type": d["content_type"],
                "size_bytes": int(d["size_bytes"]), "status": d["status"],
                **({"booking_id": d["booking_id"]} if d.get("booking_id") else {}),
                "created": {"at": d["created_at"], "by": d["created_by"], "role": d["created_role"]}}

    def _visit_of(self, caller: Any, pid: str, bid: str) -> dict[str, Any]:
        """The visit a document is attached to: the patient's own visit, or the calling doctor's completed
        visit with this patient (422 naming ``booking_id`` otherwise, nothing revealed about whose it is)."""
        from chalicelib.booking import store as booking_store

        b = booking_store.get_booking(bid)
        mine = b is not None and b["patient_id"] == pid and (
            caller.role == "patient" or (b["doctor_id"] == caller.user_id and b["status"] == "completed"))
        if not mine:
            raise field_invalid("booking_id", "unknown_visit", "a visit of this card (a doctor: their completed visit)")
        assert b is not None
        return b

    def _uploader_view(self, caller: Any, pid: str, req: m.DocumentIn) -> Optional[access.View]:
        """Who may attach a document: the patient to their card or visit; a doctor to a visit of theirs that
        is completed, or to the card under a live grant naming ``documents`` (else 404: nothing revealed)."""
        if identity_access.has_role(caller, "patient"):
            if caller.user_id != pid:
                raise not_found()
            if req.booking_id:
                self._visit_of(caller, pid, req.booking_id)
            return None
        access.require_doctor(caller)
        _, grants, _ = store.read_card(pid)
        view = self._view(caller, pid, grants)
        if req.booking_id:
            from chalicelib.booking import access as booking_access
            from chalicelib.booking import store as booking_store

            b = booking_store.get_booking(req.booking_id)
            if b is None or b["patient_id"] != pid or b["doctor_id"] != caller.user_id or b["status"] != "completed":
                raise field_invalid("booking_id", "unknown_visit", "a completed visit of yours with this patient")
            booking_access.relation(caller, b, as_clinic=False)  # still a doctor of the visit's clinic, or 404
        elif "documents" not in view.sections:
            raise not_found()
        return view

    def create_upload(self, caller: Any, req: m.DocumentIn, pid: Optional[str] = None) -> dict[str, Any]:
        """A pending document and a presigned POST that accepts exactly it (key, type, size, KMS)."""
        if pid is None:  # /me/card/documents: the patient's own card
            access.require_patient(caller)
            pid = caller.user_id
        elif not is_ulid(pid):
            raise not_found()
        elif not identity_access.has_role(caller, "patient"):
            access.require_doctor(caller)
        limit = self.settings.records_document_max_bytes
        if req.size_bytes > limit:
            raise field_invalid("size_bytes", "too_large", f"at most {limit} bytes")
        view = self._uploader_view(caller, pid, req)
        now = self._now()
        did = new_id()
        d = {"patient_id": pid, "document_id": did, "status": "pending", "content_type": req.content_type,
             "size_bytes": req.size_bytes, "s3_key": f"records/{pid}/{did}", "created_at": clock.iso(now),
             "created_by": caller.user_id, "created_role": caller.role,
             **({"booking_id": req.booking_id} if req.booking_id else {})}
        d["sealed"] = self.sealer.seal(pid, "documents", f"{pid}|documents|{did}|1", req.name.encode())
        ttl = self.settings.records_upload_ttl_s
        upload = self.storage.upload(d["s3_key"], req.content_type, req.size_bytes, ttl)
        tx = db.Tx()
        tx.put_new("document", store.document_item(d))
        if view is not None:  # a doctor's upload is a write into the patient's card: in their access log
            tx.put_new("access", store.access_item(self._access(caller, pid, view, "write", ["documents"], [did])))
        tx.commit()
        log.event("records.upload_started", document_id=did)
        expires = clock.iso(now + timedelta(seconds=ttl))
        return {**self._document_view(d), "upload": upload, "upload_expires_at": expires}

    def complete_upload(self, caller: Any, did: str, pid: Optional[str] = None) -> dict[str, Any]:
        """The uploader confirms: the object's size, type and encryption are checked before it shows."""
        if pid is None:
            access.require_patient(caller)
            pid = caller.user_id
        elif not identity_access.has_role(caller, "patient"):
            access.require_doctor(caller)
        elif pid != caller.user_id:
            raise not_found()
        d = store.get_document(pid, did) if is_ulid(pid) and is_ulid(did) else None
        if d is None or d["created_by"] != caller.user_id:
            raise not_found()
        if d["status"] == "pending":
            head = self.storage.head(d["s3_key"])
            if head is None:
                raise conflict("upload_missing", "nothing was uploaded for this document yet")
            if int(head.get("ContentLength", -1)) != int(d["size_bytes"]) or \
                    head.get("ContentType") != d["content_type"] or head.get("ServerSideEncryption") != "aws:kms":
                raise conflict("upload_mismatch", "the uploaded object is not the one announced")
            store.mark_available(pid, did)
            d["status"] = "available"
        return self._document_view(d)

    def download(self, caller: Any, pid: str, did: str) -> dict[str, Any]:
        """A presigned GET valid for minutes, issued only to someone who may see the document now."""
        if not (is_ulid(pid) and is_ulid(did)):
            raise not_found()
        parts = store.read_card_all(pid)
        view = self._view(caller, pid, parts["grant"])
        d = next((x for x in parts["document"] if x["document_id"] == did), None)
        if d is None or d["status"] != "available" or not view.sees_document(d):
            raise not_found()
        ttl = self.settings.records_download_ttl_s
        url = self.storage.download(d["s3_key"], ttl)
        if not view.is_patient:
            self.log_read(caller, pid, view, "read", ["documents"], [did])
        log.event("records.download_issued", document_id=did)
        return {"url": url, "expires_at": clock.iso(self._now() + timedelta(seconds=ttl))}

    # ------------------------------------------------------------------ export

    def export(self, caller: Any) -> dict[str, Any]:
        """The patient's whole card as a FHIR R4 Bundle: two queries (the card, the access log)."""
        from chalicelib.records import fhir

        access.require_patient(caller)
        pid = caller.user_id
        parts = store.read_card_all(pid)
        grants = parts["grant"]
        card = self._card_view(pid, parts["entry"], access.View("patient", frozenset(m.GRANTABLE)),
                               parts["conclusion"], parts["document"])
        now = self._now()
        shown = [self._grant_view(g, now) for g in sorted(grants, key=lambda g: g["grant_id"])]
        log_ = store.access_all(pid)
        ttl = self.settings.records_download_ttl_s
        links = {d["document_id"]: self.storage.download(f"records/{pid}/{d['document_id']}", ttl)
                 for d in card["documents"]}
        return fhir.bundle(pid, card, shown, log_, clock.iso(now), links)

    def shared_export(self, caller: Any, pid: str) -> dict[str, Any]:
        """What a doctor's live grants cover, as a FHIR R4 Bundle (the patient's export restricted to it): the
        granted sections, the signed conclusions and documents where granted, a Consent for each grant that
        opens it; no access log (that is the patient's). Without a live grant: 404, whatever the doctor wrote;
        another role: 403. One access-log item and a ``records.card_read`` event."""
        from chalicelib.records import fhir

        if identity_access.has_role(caller, "patient"):
            if caller.user_id == pid:
                return self.export(caller)  # the patient's own card, as /me/card/export
            raise not_found()
        access.require_doctor(caller)
        if not is_ulid(pid):
            raise not_found()
        parts = store.read_card_all(pid)
        view = self._view(caller, pid, parts["grant"])
        if not view.grant_ids:
            raise not_found()
        # what the grant covers, not what the doctor wrote
        granted = access.View("doctor", view.sections, view.grant_ids, view.clinic_id, None)
        card = self._card_view(pid, parts["entry"], granted, parts["conclusion"], parts["document"])
        card["sections"] = {s: e for s, e in card["sections"].items() if s in view.sections}
        now = self._now()
        opened = [self._grant_view(g, now) for g in sorted(parts["grant"], key=lambda g: g["grant_id"])
                  if g["grant_id"] in view.grant_ids]
        ttl = self.settings.records_download_ttl_s
        links = {d["document_id"]: self.storage.download(f"records/{pid}/{d['document_id']}", ttl)
                 for d in card["documents"]}
        self.log_read(caller, pid, view, "export", sorted(view.sections))
        log.event("records.card_exported", sections=len(view.sections))
        return fhir.bundle(pid, card, opened, [], clock.iso(now), links)

    # ------------------------------------------------------------------ the access log

    def access_log(self, caller: Any, q: m.Page) -> dict[str, Any]:
        access.require_patient(caller)
        items, cursor = store.access_page(caller.user_id, q.limit, q.cursor)
        keep = ("access_id", "at", "actor_id", "actor_role", "clinic_id", "action", "sections", "entries", "grant_ids")
        return {"items": [{k: a[k] for k in keep if a.get(k) is not None} for a in items], "next_cursor": cursor}


def _grant_event(g: dict[str, Any]) -> dict[str, Any]:
    """What a grant's events say: whose card, to whom, which sections until when (never card content)."""
    return {"patient_id": g["patient_id"], "grant_id": g["grant_id"], "grantee_kind": g["grantee_kind"],
            "grantee_id": g["grantee_id"], "sections": g.get("sections"), "until": g["until"],
            ("doctor_id" if g["grantee_kind"] == "doctor" else "clinic_id"): g["grantee_id"]}
