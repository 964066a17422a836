"""DynamoDB items of clinics and their catalogue. All key building for the feature lives here.

| item                 | PK                   | SK                          | GSI1PK / GSI1SK                          |
|----------------------|----------------------|-----------------------------|------------------------------------------|
| clinic               | CLINIC#<cid>         | PROFILE                     | CLINICS#<status> / <updated>#<cid>       |
| admin membership     | CLINIC#<cid>         | ADMIN#<uid>                 | USER#<uid> / ADMINOF#<cid>               |
| doctor membership    | CLINIC#<cid>         | DOCTOR#<did>                | USER#<did> / DOCTOROF#<cid>              |
| branch               | CLINIC#<cid>         | BRANCH#<bid>                | CITY#<city> / CLINIC#<cid>#BRANCH#<bid> (active clinics only) |
| service              | CLINIC#<cid>         | SERVICE#<sid>               |                                          |
| resource             | CLINIC#<cid>         | RESOURCE#<rid>              |                                          |
| invitation           | INVITE#<iid>         | INVITE                      | CLINIC#<cid> / INVITE#<iid>              |
| doctor profile       | DOCTOR#<did>         | PROFILE                     |                                          |
| schedule guard       | DOCTOR#<did>         | SCHEDULE                    |                                          |
| template             | DOCTOR#<did>         | TEMPLATE#<tid>              |                                          |
| exception            | DOCTOR#<did>         | EXCEPTION#<tid>             |                                          |
| duty shift           | DOCTOR#<did>         | DUTY#<tid>                  |                                          |
| doctor listing       | SPECIALTY#<spec>     | DOCTOR#<did>#CLINIC#<cid>   |                                          |
| Stripe account map   | STRIPEACCT#<acct>    | MAP                         |                                          |
"""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.core import db

PROFILE = "PROFILE"


def clinic_pk(cid: str) -> str:
    return db.key("CLINIC", cid)


def doctor_pk(did: str) -> str:
    return db.key("DOCTOR", did)


def city_key(city: str) -> str:
    return "CITY#" + "".join(ch for ch in city.strip().casefold() if ch.isalnum() or ch == " ").replace(" ", "_")



# ------------------------------------------------------------------ clinics

def clinic_status_keys(status: str, updated_iso: str, cid: str) -> dict[str, str]:
    return {"GSI1PK": f"CLINICS#{status}", "GSI1SK": f"{updated_iso}#{cid}"}


def get_clinic(cid: str) -> Optional[dict[str, Any]]:
    return db.get(clinic_pk(cid), PROFILE)


def clinic_item(clinic: dict[str, Any], updated_iso: str) -> dict[str, Any]:
    return {"PK": clinic_pk(clinic["clinic_id"]), "SK": PROFILE, "type": "clinic", **clinic,
            **clinic_status_keys(clinic["status"], updated_iso, clinic["clinic_id"])}


def admin_item(cid: str, uid: str, now: int) -> dict[str, Any]:
    return {"PK": clinic_pk(cid), "SK": db.key("ADMIN", uid), "type": "clinic_admin", "clinic_id": cid,
            "user_id": uid, "GSI1PK": db.key("USER", uid), "GSI1SK": db.key("ADMINOF", cid), "created_at": now}


def is_admin(cid: str, uid: str) -> bool:
    return db.get(clinic_pk(cid), db.key("ADMIN", uid)) is not None


def admins(cid: str) -> list[dict[str, Any]]:
    items, _ = db.query_page(clinic_pk(cid), "ADMIN#", 100, None)
    return items


def clinics_of_admin(uid: str) -> list[dict[str, Any]]:
    items, _ = db.query_page(db.key("USER", uid), "ADMINOF#", 100, None, index="GSI1")
    return items


def clinics_by_status(status: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(f"CLINICS#{status}", "", limit, cursor, index="GSI1")


def children(cid: str, prefix: str, limit: int = 100, cursor: Optional[str] = None) -> tuple[list[dict], Optional[str]]:
    return db.query_page(clinic_pk(cid), prefix, limit, cursor)


def get_child(cid: str, kind: str, child_id: str) -> Optional[dict[str, Any]]:
    return db.get(clinic_pk(cid), db.key(kind, child_id))


def set_branch_listing(branch: dict[str, Any], listed: bool) -> None:
    """Show or hide a branch in the city catalogue (only active clinics are listed)."""
    key = db.item_key(branch["PK"], branch["SK"])
    if listed:
        db.ddb().update_item(
            TableName=db.table_name(), Key=key, UpdateExpression="SET GSI1PK = :pk, GSI1SK = :sk",
            ExpressionAttributeValues=db.values(
                pk=city_key(branch["city"]), sk=f"CLINIC#{branch['clinic_id']}#BRANCH#{branch['branch_id']}"))
    else:
        db.ddb().update_item(TableName=db.table_name(), Key=key, UpdateExpression="REMOVE GSI1PK, GSI1SK")


def branches_in_city(city: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(city_key(city), "CLINIC#", limit, cursor, index="GSI1")


# ------------------------------------------------------------------ invitations

def invitation_pk(iid: str) -> str:
    return db.key("INVITE", iid)


def get_invitation(iid: str) -> Optional[dict[str, Any]]:
    return db.get(invitation_pk(iid), "INVITE")


def invitation_item(inv: dict[str, Any]) -> dict[str, Any]:
    return {"PK": invitation_pk(inv["invitation_id"]), "SK": "INVITE", "type": "invitation",
            "GSI1PK": clinic_pk(inv["clinic_id"]), "GSI1SK": db.key("INVITE", inv["invitation_id"]), **inv}


def clinic_invitations(cid: str) -> list[dict[str, Any]]:
    items, _ = db.query_page(clinic_pk(cid), "INVITE#", 100, None, index="GSI1")
    return items


def spend_invitation_attempt(iid: str, max_attempts: int, now: int) -> Optional[dict[str, Any]]:
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(invitation_pk(iid), "INVITE"),
            UpdateExpression="SET attempts = attempts + :one",
            ConditionExpression="attribute_exists(PK) AND #s = :pending AND attempts < :max AND expires_at > :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=db.values(one=1, pending="pending", max=max_attempts, now=now),
            ReturnValues="ALL_NEW",
        )
    except Exception as exc:
        if db.is_condition_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def close_invitation_op(iid: str, status: str, attempts_seen: Optional[int] = None) -> dict[str, Any]:
    cond = "#s = :pending"
    vals: dict[str, Any] = {"new": status, "pending": "pending"}
    if attempts_seen is not None:
        cond += " AND attempts = :a"
        vals["a"] = attempts_seen
    return {"Update": {
        "TableName": db.table_name(), "Key": db.item_key(invitation_pk(iid), "INVITE"),
        "UpdateExpression": "SET #s = :new", "ConditionExpression": cond,
        "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": db.values(**vals),
    }}


# ------------------------------------------------------------------ doctors

def get_doctor_profile(did: str) -> Optional[dict[str, Any]]:
    return db.get(doctor_pk(did), PROFILE)


def doctor_membership_item(cid: str, did: str, now: int) -> dict[str, Any]:
    return {"PK": clinic_pk(cid), "SK": db.key("DOCTOR", did), "type": "clinic_doctor", "clinic_id": cid,
            "doctor_id": did, "GSI1PK": db.key("USER", did), "GSI1SK": db.key("DOCTOROF", cid),
            "created_at": now, "listed_specialties": []}


def doctor_memberships(did: str) -> list[dict[str, Any]]:
    items, _ = db.query_page(db.key("USER", did), "DOCTOROF#", 100, None, index="GSI1")
    return items


def doctor_items(did: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        items, cursor = db.query_page(doctor_pk(did), prefix, 100, cursor)
        out += items
        if not cursor:
            return out


def schedule_guard_op(did: str, seen_version: int) -> dict[str, Any]:
    """Serialises schedule changes of one doctor: two writers cannot both pass the overlap check."""
    if seen_version == 0:
        return {"Put": {"TableName": db.table_name(),
                        "Item": db.to_item({"PK": doctor_pk(did), "SK": "SCHEDULE", "type": "schedule_guard",
                                            "version": 1}),
                        "ConditionExpression": "attribute_not_exists(PK)"}}
    return db.update_versioned_op(doctor_pk(did), "SCHEDULE", {}, seen_version)


def schedule_version(did: str) -> int:
    item = db.get(doctor_pk(did), "SCHEDULE")
    return int(item["version"]) if item else 0


def listing_item(specialty: str, did: str, cid: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"PK": db.key("SPECIALTY", specialty), "SK": f"DOCTOR#{did}#CLINIC#{cid}", "type": "doctor_listing",
            "specialty": specialty, "doctor_id": did, "clinic_id": cid, **fields}


def delete_op(pk: str, sk: str) -> dict[str, Any]:
    return {"Delete": {"TableName": db.table_name(), "Key": db.item_key(pk, sk)}}


def put_op(item: dict[str, Any], must_exist: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"Put": {"TableName": db.table_name(), "Item": db.to_item(item)}}
    if must_exist:
        op["Put"]["ConditionExpression"] = "attribute_exists(PK)"
    return op


def doctors_by_specialty(specialty: str, limit: int, cursor: Optional[str], flt: Optional[str],
                         vals: dict[str, Any], names: Optional[dict[str, str]]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(db.key("SPECIALTY", specialty), "DOCTOR#", limit, cursor,
                         filter_expression=flt, filter_values=vals, filter_names=names)


def map_stripe_account_op(account_id: str, cid: str) -> dict[str, Any]:
    return {"Put": {"TableName": db.table_name(),
                    "Item": db.to_item({"PK": db.key("STRIPEACCT", account_id), "SK": "MAP",
                                        "type": "stripe_account", "clinic_id": cid}),
                    "ConditionExpression": "attribute_not_exists(PK)"}}


def clinic_for_stripe_account(account_id: str) -> Optional[str]:
    item = db.get(db.key("STRIPEACCT", account_id), "MAP")
    return item["clinic_id"] if item else None


def delete(pk: str, sk: str, condition: Optional[str] = None, vals: Optional[dict[str, Any]] = None) -> bool:
    params: dict[str, Any] = {"TableName": db.table_name(), "Key": db.item_key(pk, sk)}
    if condition:
        params["ConditionExpression"] = condition
        params["ExpressionAttributeValues"] = vals or {}
    try:
        db.ddb().delete_item(**params)
        return True
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise
