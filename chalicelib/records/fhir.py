"""The card as a FHIR R4 Bundle (type collection): Patient, AllergyIntolerance, Immunization, Condition,
MedicationStatement, Procedure (past treatment notes), Encounter and Composition per signed conclusion,
DocumentReference per document (its link a presigned GET valid minutes),
Consent per grant, AuditEvent per access-log item. Plain dictionaries: the Lambda carries no FHIR library;
the tests parse the result with ``fhir.resources`` (R4B) and resolve every reference.
"""
from __future__ import annotations

from html import escape
from typing import Any

BASE = "https://api.clinic.example/fhir/"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def _who(author: str, role: str) -> dict[str, str]:
    return {"display": f"{role} {author}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{BASE}{resource['resourceType']}/{resource['id']}", "resource": resource}


def _text(value: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(value)}</div>'}


def _card_entry(pid: str, e: dict[str, Any]) -> dict[str, Any]:
    d, subject, eid = e["data"], _ref("Patient", pid), e["entry_id"]
    recorded = e["created"]["at"]
    if e["section"] == "allergies":
        r: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": eid, "patient": subject,
                             "type": d.get("kind", "allergy"), "code": {"text": d["substance"]},
                             "recordedDate": recorded, "reaction": [{"severity": d["severity"], "manifestation": [
                                 {"text": d.get("reaction") or "unspecified"}]}]}
    elif e["section"] == "vaccinations":
        r = {"resourceType": "Immunization", "id": eid, "status": "completed", "patient": subject,
             "vaccineCode": {"text": d["vaccine"]}, "occurrenceDateTime": d["date"], "recorded": recorded}
        if d.get("lot"):
            r["lotNumber"] = d["lot"]
        if d.get("dose"):
            r["protocolApplied"] = [{"doseNumberString": d["dose"]}]
    elif e["section"] == "conditions":
        r = {"resourceType": "Condition", "id": eid, "subject": subject, "code": {"text": d["name"]},
             "clinicalStatus": {"coding": [{"system": CLINICAL, "code": d["status"]}]}, "recordedDate": recorded}
        if d.get("since"):
            r["onsetDateTime"] = d["since"]
    elif e["section"] == "medications":
        r = {"resourceType": "MedicationStatement", "id": eid, "subject": subject,
             "status": "completed" if d.get("until") else "active", "medicationCodeableConcept": {"text": d["name"]},
             "dateAsserted": recorded}
        period = {k: v for k, v in (("start", d.get("since")), ("end", d.get("until"))) if v}
        if period:
            r["effectivePeriod"] = period
        if d.get("dose"):
            r["dosage"] = [{"text": d["dose"]}]
    else:  # notes: past treatment
        r = {"resourceType": "Procedure", "id": eid, "status": "completed", "subject": subject,
             "code": {"text": d["text"]}}
        if d.get("date"):
            r["performedDateTime"] = d["date"]
    return r


def _conclusion(pid: str, c: dict[str, Any]) -> list[dict[str, Any]]:
    bid, subject = c["booking_id"], _ref("Patient", pid)
    encounter = {"resourceType": "Encounter", "id": bid, "status": "finished", "subject": subject,
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "period": {"start": c["visit_start"]}}
    sections = []
    for key, title in (("complaints", "Complaints"), ("findings", "Findings"), ("diagnosis", "Diagnosis"),
                       ("recommendations", "Recommendations")):
        if c.get(key):
            section: dict[str, Any] = {"title": title, "text": _text(c[key])}
            if key == "diagnosis" and c.get("icd10"):
                section["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": c["icd10"]}]}
            sections.append(section)
    composition = {"resourceType": "Composition", "id": f"{bid}-v{c['version']}",
                   "status": "amended" if c.get("supersedes") else "final",
                   "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}]},
                   "subject": subject, "encounter": _ref("Encounter", bid), "date": c.get("signed_at", c["written_at"]),
                   "author": [_who(c["doctor_id"], "doctor")], "title": "Visit conclusion", "section": sections}
    return [encounter, composition]


def _document(pid: str, d: dict[str, Any], url: str, encounters: set[str]) -> dict[str, Any]:
    """A document of the card with a short-lived link (the presigned GET of the export's moment)."""
    r: dict[str, Any] = {"resourceType": "DocumentReference", "id": d["document_id"], "status": "current",
                         "subject": _ref("Patient", pid), "date": d["created"]["at"],
                         "author": [_who(d["created"]["by"], d["created"]["role"])],
                         "content": [{"attachment": {"contentType": d["content_type"], "url": url,
                                                     "size": int(d["size_bytes"]), "title": d["name"],
                                                     "creation": d["created"]["at"]}}]}
    if d.get("booking_id") in encounters:
        r["context"] = {"encounter": [_ref("Encounter", d["booking_id"])]}
    return r


def _consent(pid: str, g: dict[str, Any]) -> dict[str, Any]:
    grantee = str(g.get("doctor_id") or g.get("clinic_id"))
    kind = "doctor" if g.get("doctor_id") else "clinic"
    status = "active" if g["status"] == "active" else "inactive"
    end = g.get("revoked_at", g["until"])
    return {"resourceType": "Consent", "id": g["grant_id"], "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": _ref("Patient", pid), "dateTime": g["created_at"],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "period": {"start": g["created_at"], "end": end},
                          "actor": [{"role": {"text": kind}, "reference": _who(grantee, kind)}],
                          "class": [{"code": s} for s in g["sections"]]}}


def _audit(pid: str, a: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "AuditEvent", "id": a["access_id"],
            "type": {"system": DCM, "code": "110110", "display": "Patient Record"},
            "action": "C" if a["action"] == "write" else "R", "recorded": a["at"],
            "agent": [{"who": _who(a["actor_id"], a["actor_role"]), "requestor": True}],
            "source": {"observer": {"display": "clinic-backend"}},
            "entity": [{"what": _ref("Patient", pid), "description": ", ".join(a["sections"])}]}


def bundle(pid: str, card: dict[str, Any], grants: list[dict[str, Any]], log: list[dict[str, Any]],
           now_iso: str, links: dict[str, str] | None = None) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "active": True}]
    for entries in card["sections"].values():
        resources += [_card_entry(pid, e) for e in entries]
    for c in card["conclusions"]:
        if c["status"] == "signed":
            resources += _conclusion(pid, c)
    encounters = {c["booking_id"] for c in card["conclusions"] if c["status"] == "signed"}
    resources += [_document(pid, d, (links or {})[d["document_id"]], encounters)
                  for d in card.get("documents", []) if d["document_id"] in (links or {})]
    resources += [_consent(pid, g) for g in grants]
    resources += [_audit(pid, a) for a in log]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": now_iso,
            "entry": [_entry(r) for r in resources]}
