"""DynamoDB items of clinics and their catalogue. All key building for the feature lives here.

| item                 | PK                   | SK                          | GSI1PK / GSI1SK                          |
|----------------------|----------------------|-----------------------------|------------------------------------------|
| clinic               | CLINIC#<cid>         | PROFILE                     | CLINICS#<status> / <updated>#<cid>       |
| admin membership     | CLINIC#<cid>         | ADMIN#<uid>                 | USER#<uid> / ADMINOF#<cid>               |
| doctor membership    | CLINIC#<cid>         | DOCTOR#<did>                | USER#<did> / DOCTOROF#<cid>              |
| branch               | CLINIC#<cid>         | BRANCH#<bid>                | CITY#<city> / CLINIC#<cid>#BRANCH#<bid>  |
| service              | CLINIC#<cid>         | SERVICE#<sid>               |                                          |
| resource             | CLINIC#<cid>         | RESOURCE#<rid>              |                                          |
| invitation           | INVITE#<iid>         | INVITE                      | CLINIC#<cid> / INVITE#<iid>              |
| doctor profile       | DOCTOR#<did>         | PROFILE                     |                                          |
| schedule guard       | DOCTOR#<did>         | SCHEDULE                    |                                          |
| template             | DOCTOR#<did>         | TEMPLATE#<tid>              |                                          |
| exception            | DOCTOR#<did>         | EXCEPTION#<end utc>#<xid>   | (TTL: end + 30 days)                     |
| duty shift           | DOCTOR#<did>         | DUTY#<end utc>#<sid>        | GSI3 DUTY#<spec> / <end>#<sid>; TTL     |
| dated item reference | DOCTOR#<did>         | REF#<id>                    | (points to the SK above; same TTL)       |
| doctor listing       | SPECIALTY#<spec>     | DOCTOR#<did>#CLINIC#<cid>   |                                          |
| Stripe account map   | STRIPEACCT#<acct>    | MAP                         |                                          |

A branch is in the city index only while its clinic is active. Exceptions and duty shifts
expire (TTL) 30 days after their end.

The clinic profile keeps ``admin_count``: the number of administrators, changed only in the transaction
that adds or removes one (``admin_count > 1`` for a removal), so the last administrator always stays.
A doctor membership with ``status = "removing"`` is gone for every access check (clinics/access.py);
its cleanup is finished by a retried removal.

Exceptions and duty shifts sort by their end (UTC), so a reader takes only what ends after a moment
(``schedule_for``); history falls behind the range and expires. A leave has no zone of its own: its
end is the latest moment its last day ends anywhere on earth (the next day 12:00 UTC).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

from chalicelib.core import clock, db

PROFILE = "PROFILE"
REMOVING = "removing"
ACTIVE_BOOKING_STATUSES = ("offered", "proposed", "held", "confirmed")
KEEP_HISTORY_DAYS = 30
FOREVER = "9999-12-31T23:59:59Z"
EVERYWHERE = "*"  # the clinic_id of the doctor's own leave: it applies in every clinic


def clinic_pk(cid: str) -> str:
    return db.key("CLINIC", cid)


def doctor_pk(did: str) -> str:
    return db.key("DOCTOR", did)


def city_key(city: str) -> str:
    return "CITY#" + "".join(ch for ch in city.strip().casefold() if ch.isalnum() or ch == " ").replace(" ", "_")


def _conflict_failure(exc: Exception) -> bool:
    return db.is_condition_failure(exc)


# ------------------------------------------------------------------ clinics

def clinic_status_keys(status: str, updated_iso: str, cid: str) -> dict[str, str]:
    return {"GSI1PK": f"CLINICS#{status}", "GSI1SK": f"{updated_iso}#{cid}"}


def get_clinic(cid: str) -> Optional[dict[str, Any]]:
    return db.get(clinic_pk(cid), PROFILE)


def clinic_item(clinic: dict[str, Any], updated_iso: str) -> dict[str, Any]:
    return {"PK": clinic_pk(clinic["clinic_id"]), "SK": PROFILE, "type": "clinic", **clinic,
            **clinic_status_keys(clinic["status"], updated_iso, clinic["clinic_id"])}


def register_clinic(tx: db.Tx, clinic: dict[str, Any], updated_iso: str, uid: str, now: int) -> db.Tx:
    """The clinic with its first administrator (``admin_count`` 1). Items: ``clinic``, ``admin``."""
    return tx.put_new("clinic", clinic_item({**clinic, "admin_count": 1}, updated_iso)) \
             .put_new("admin", admin_item(clinic["clinic_id"], uid, now))


def get_clinics(cids: list[str]) -> dict[str, dict[str, Any]]:
    """Clinic profiles by id (BatchGetItem, 100 at a time, never a part)."""
    return {c["clinic_id"]: c for c in db.batch_get([(clinic_pk(cid), PROFILE) for cid in cids])}


def update_clinic(cid: str, changes: dict[str, Any], version: int) -> dict[str, Any]:
    return db.update_versioned(clinic_pk(cid), PROFILE, changes, version)


def update_child(cid: str, kind: str, child_id: str, changes: dict[str, Any], version: int) -> dict[str, Any]:
    return db.update_versioned(clinic_pk(cid), db.key(kind, child_id), changes, version)


def transition_clinic(cid: str, allowed: tuple[str, ...], to: str, now: int, updated_iso: str,
                      extra: dict[str, Any]) -> Optional[dict[str, Any]]:
    """Move a clinic to ``to`` if its status is one of ``allowed``; None if it is not."""
    names = {"#s": "status", "#u": "updated_at", "#g1": "GSI1PK", "#g2": "GSI1SK", "#v": "version"}
    sets = ["#s = :to", "#u = :now", "#g1 = :g1", "#g2 = :g2", "#v = #v + :one"]
    keys = clinic_status_keys(to, updated_iso, cid)
    vals: dict[str, Any] = {"to": to, "now": now, "one": 1, "g1": keys["GSI1PK"], "g2": keys["GSI1SK"]}
    for i, (k, v) in enumerate(extra.items()):
        names[f"#x{i}"] = k
        sets.append(f"#x{i} = :x{i}")
        vals[f"x{i}"] = v
    allowed_vals = {f"a{i}": st for i, st in enumerate(allowed)}
    vals.update(allowed_vals)
    try:
        resp = db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(clinic_pk(cid), PROFILE),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=f"#s IN ({', '.join(':' + k for k in allowed_vals)})",
            ExpressionAttributeNames=names, ExpressionAttributeValues=db.values(**vals), ReturnValues="ALL_NEW")
    except Exception as exc:
        if _conflict_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


# ------------------------------------------------------------------ administrators

def admin_item(cid: str, uid: str, now: int) -> dict[str, Any]:
    return {"PK": clinic_pk(cid), "SK": db.key("ADMIN", uid), "type": "clinic_admin", "clinic_id": cid,
            "user_id": uid, "GSI1PK": db.key("USER", uid), "GSI1SK": db.key("ADMINOF", cid), "created_at": now}


def is_admin(cid: str, uid: str) -> bool:
    """Prefer ``clinics.access.is_admin``; kept for callers not yet moved."""
    return db.get(clinic_pk(cid), db.key("ADMIN", uid)) is not None


def admins(cid: str) -> list[dict[str, Any]]:
    """Every administrator of a clinic (paged to the end)."""
    return db.query_prefix(clinic_pk(cid), "ADMIN#")


def admins_page(cid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(clinic_pk(cid), "ADMIN#", limit, cursor)


def clinics_of_admin(uid: str) -> list[dict[str, Any]]:
    """Every clinic a user administers (paged to the end)."""
    return db.query_prefix(db.key("USER", uid), "ADMINOF#", index="GSI1")


def clinics_of_admin_page(uid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(db.key("USER", uid), "ADMINOF#", limit, cursor, index="GSI1")


def ensure_admin_count(cid: str) -> None:
    """Clinics created before the counter get it once, counted from their administrator items. Safe under
    concurrency: every change of the set of administrators requires the counter to exist already."""
    clinic = get_clinic(cid)
    if clinic is None or "admin_count" in clinic:
        return
    n = db.query_count(*db.prefix_condition(clinic_pk(cid), "ADMIN#"))
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(clinic_pk(cid), PROFILE),
            UpdateExpression="SET admin_count = :n",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(admin_count)",
            ExpressionAttributeValues=db.values(n=n))
    except Exception as exc:
        if not _conflict_failure(exc):
            raise


def remove_admin(tx: db.Tx, cid: str, uid: str, by: str) -> db.Tx:
    """Items: ``admin`` (must exist), ``clinic`` (``admin_count > 1``), ``caller`` (still an administrator)."""
    cpk = clinic_pk(cid)
    tx.delete("admin", cpk, db.key("ADMIN", uid), condition="attribute_exists(PK)")
    tx.update("clinic", cpk, PROFILE, "SET admin_count = admin_count - :one", condition="admin_count > :one",
              expr_values=db.values(one=1))
    if by != uid:
        tx.check("caller", cpk, db.key("ADMIN", by), "attribute_exists(PK)")
    return tx


def add_admin(tx: db.Tx, member: dict[str, Any]) -> db.Tx:
    """Items: ``member`` (new), ``clinic`` (the counter, which must exist: ``ensure_admin_count`` first)."""
    tx.put_new("member", member)
    return tx.update("clinic", clinic_pk(member["clinic_id"]), PROFILE, "SET admin_count = admin_count + :one",
                     condition="attribute_exists(admin_count)", expr_values=db.values(one=1))


def clinics_by_status(status: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(f"CLINICS#{status}", "", limit, cursor, index="GSI1")


# ------------------------------------------------------------------ branches, services, resources

def children(cid: str, prefix: str, limit: int = 100, cursor: Optional[str] = None,
             flt: Optional[str] = None, vals: Optional[dict[str, Any]] = None,
             names: Optional[dict[str, str]] = None) -> tuple[list[dict], Optional[str]]:
    """One page of a clinic's children, shown to a person."""
    return db.query_page(clinic_pk(cid), prefix, limit, cursor, filter_expression=flt, filter_values=vals,
                         filter_names=names)


def all_children(cid: str, prefix: str) -> list[dict[str, Any]]:
    """Every child of a kind (paged to the end): for logic."""
    return db.query_prefix(clinic_pk(cid), prefix)


def first_branch_zone(cid: str) -> Optional[str]:
    """The zone of the clinic's first branch (a clinic's branches share a zone in practice), None without one."""
    branches = sorted(all_children(cid, "BRANCH#"), key=lambda b: b["SK"])
    return branches[0].get("time_zone") if branches else None


def has_child(cid: str, prefix: str) -> bool:
    items, _ = db.query_page(clinic_pk(cid), prefix, 1, None)
    return bool(items)


def get_child(cid: str, kind: str, child_id: str) -> Optional[dict[str, Any]]:
    return db.get(clinic_pk(cid), db.key(kind, child_id))


def put_new(item: dict[str, Any]) -> None:
    db.put_new(item)


def slot_context_keys(cid: str, sid: str, did: str, branch_ids: list[str]) -> list[tuple[str, str]]:
    """Keys of what a free slot depends on, in this order: the clinic, the service, the doctor's
    membership, then the branches (one BatchGetItem for booking)."""
    cpk = clinic_pk(cid)
    return [(cpk, PROFILE), (cpk, db.key("SERVICE", sid)), (cpk, db.key("DOCTOR", did)),
            *[(cpk, db.key("BRANCH", bid)) for bid in branch_ids]]


def branch_keys(cid: str, bid: str, city: str) -> dict[str, str]:
    return {"PK": clinic_pk(cid), "SK": db.key("BRANCH", bid),
            "GSI1PK": city_key(city), "GSI1SK": f"CLINIC#{cid}#BRANCH#{bid}"}


def service_keys(cid: str, sid: str) -> dict[str, str]:
    return {"PK": clinic_pk(cid), "SK": db.key("SERVICE", sid)}


def resource_keys(cid: str, rid: str) -> dict[str, str]:
    return {"PK": clinic_pk(cid), "SK": db.key("RESOURCE", rid)}


def relist_branches(branches: list[dict[str, Any]], fields: Optional[dict[str, Any]]) -> None:
    """Show every branch in its city's catalogue with the clinic's public fields (``fields``), or hide them
    all (``None``): 100 branches per transaction, never bringing a deleted branch back."""
    for at in range(0, len(branches), db.Tx.MAX_ITEMS):
        tx = db.Tx()
        for b in branches[at:at + db.Tx.MAX_ITEMS]:
            name = f"branch:{b['branch_id']}"
            if fields is None:
                tx.update(name, b["PK"], b["SK"], "REMOVE GSI1PK, GSI1SK", condition="attribute_exists(PK)")
            else:
                tx.update(name, b["PK"], b["SK"],
                          "SET GSI1PK = :pk, GSI1SK = :sk, clinic_name = :n, clinic_contacts = :c",
                          condition="attribute_exists(PK)",
                          expr_values=db.values(pk=city_key(b["city"]),
                                                sk=f"CLINIC#{b['clinic_id']}#BRANCH#{b['branch_id']}",
                                                n=fields["clinic_name"], c=fields["clinic_contacts"]))
        try:
            tx.commit()
        except db.TxCancelled:
            # a branch was deleted meanwhile: list the others one by one
            for b in branches[at:at + db.Tx.MAX_ITEMS]:
                if fields is None:
                    set_branch_listing(b, False)
                else:
                    list_branch(b, fields)


def list_branch(branch: dict[str, Any], fields: dict[str, Any]) -> None:
    """Show a branch in the city catalogue with the clinic's public fields."""
    _update_existing(
        TableName=db.table_name(), Key=db.item_key(branch["PK"], branch["SK"]),
        UpdateExpression="SET GSI1PK = :pk, GSI1SK = :sk, clinic_name = :n, clinic_contacts = :c",
        ExpressionAttributeValues=db.values(
            pk=city_key(branch["city"]), sk=f"CLINIC#{branch['clinic_id']}#BRANCH#{branch['branch_id']}",
            n=fields["clinic_name"], c=fields["clinic_contacts"]))


def _update_existing(**update: Any) -> bool:
    """An update that never brings a deleted item back: False if the item is gone."""
    try:
        db.ddb().update_item(ConditionExpression="attribute_exists(PK)", **update)
    except Exception as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    return True


def set_branch_listing(branch: dict[str, Any], listed: bool) -> None:
    """Show or hide a branch in the city catalogue (only active clinics are listed)."""
    key = db.item_key(branch["PK"], branch["SK"])
    if listed:
        _update_existing(
            TableName=db.table_name(), Key=key, UpdateExpression="SET GSI1PK = :pk, GSI1SK = :sk",
            ExpressionAttributeValues=db.values(
                pk=city_key(branch["city"]), sk=f"CLINIC#{branch['clinic_id']}#BRANCH#{branch['branch_id']}"))
    else:
        _update_existing(TableName=db.table_name(), Key=key, UpdateExpression="REMOVE GSI1PK, GSI1SK")


def branches_in_city(city: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(city_key(city), "CLINIC#", limit, cursor, index="GSI1")


def add_resource(tx: db.Tx, item: dict[str, Any], entry: dict[str, Any]) -> db.Tx:
    """Items: ``resource`` (new), ``branch`` (carries its resources, so free slots need no extra read)."""
    tx.put_new("resource", item)
    return tx.update("branch", clinic_pk(item["clinic_id"]), db.key("BRANCH", item["branch_id"]),
                     "SET resources = list_append(if_not_exists(resources, :empty), :r)",
                     condition="attribute_exists(PK)", expr_values=db.values(empty=[], r=[entry]))


# ------------------------------------------------------------------ payouts

def start_payouts(tx: db.Tx, account_id: str, cid: str, payouts: dict[str, Any], version: int) -> db.Tx:
    """Items: ``account_map`` (new), ``clinic`` (at the version read)."""
    tx.put_new("account_map", {"PK": db.key("STRIPEACCT", account_id), "SK": "MAP", "type": "stripe_account",
                               "clinic_id": cid})
    return tx.add("clinic", db.update_versioned_op(clinic_pk(cid), PROFILE, {"payouts": payouts}, version))


def clinic_for_stripe_account(account_id: str) -> Optional[str]:
    item = db.get(db.key("STRIPEACCT", account_id), "MAP")
    return item["clinic_id"] if item else None


def apply_payouts(cid: str, payouts: dict[str, Any], created: int) -> bool:
    """Apply a Stripe account state unless a newer one was applied already."""
    try:
        db.ddb().update_item(
            TableName=db.table_name(), Key=db.item_key(clinic_pk(cid), PROFILE),
            UpdateExpression="SET payouts = :p, version = version + :one",
            ConditionExpression="attribute_not_exists(payouts.event_created) OR payouts.event_created < :c",
            ExpressionAttributeValues=db.values(p=payouts, one=1, c=created))
    except Exception as exc:
        if _conflict_failure(exc):
            return False
        raise
    return True


# ------------------------------------------------------------------ invitations

def invitation_pk(iid: str) -> str:
    return db.key("INVITE", iid)


def get_invitation(iid: str) -> Optional[dict[str, Any]]:
    return db.get(invitation_pk(iid), "INVITE")


def invitation_item(inv: dict[str, Any]) -> dict[str, Any]:
    return {"PK": invitation_pk(inv["invitation_id"]), "SK": "INVITE", "type": "invitation",
            "GSI1PK": clinic_pk(inv["clinic_id"]), "GSI1SK": db.key("INVITE", inv["invitation_id"]), **inv}


def clinic_invitations(cid: str) -> list[dict[str, Any]]:
    """Every invitation of a clinic (paged to the end)."""
    return db.query_prefix(clinic_pk(cid), "INVITE#", index="GSI1")


def clinic_invitations_page(cid: str, limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(clinic_pk(cid), "INVITE#", limit, cursor, index="GSI1")


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
        if _conflict_failure(exc):
            return None
        raise
    return db.from_item(resp["Attributes"])


def close_invitation(tx: db.Tx, iid: str, status: str, attempts_seen: Optional[int] = None) -> db.Tx:
    """Item: ``invitation`` (still pending, and with the attempts seen if given)."""
    cond = "#s = :pending"
    vals: dict[str, Any] = {"new": status, "pending": "pending"}
    if attempts_seen is not None:
        cond += " AND attempts = :a"
        vals["a"] = attempts_seen
    return tx.update("invitation", invitation_pk(iid), "INVITE", "SET #s = :new", condition=cond,
                     expr_values=db.values(**vals), names={"#s": "status"})


# ------------------------------------------------------------------ doctors

def get_doctor_profile(did: str) -> Optional[dict[str, Any]]:
    return db.get(doctor_pk(did), PROFILE)


def doctor_profile_item(did: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"PK": doctor_pk(did), "SK": PROFILE, "type": "doctor_profile", "doctor_id": did, **fields}


def put_doctor_profile(item: dict[str, Any]) -> None:
    db.ddb().put_item(TableName=db.table_name(), Item=db.to_item(item))


def doctor_membership_item(cid: str, did: str, now: int) -> dict[str, Any]:
    return {"PK": clinic_pk(cid), "SK": db.key("DOCTOR", did), "type": "clinic_doctor", "clinic_id": cid,
            "doctor_id": did, "GSI1PK": db.key("USER", did), "GSI1SK": db.key("DOCTOROF", cid),
            "created_at": now, "listed_specialties": []}


def add_doctor(tx: db.Tx, member: dict[str, Any]) -> db.Tx:
    """Item: ``member`` (new)."""
    return tx.put_new("member", member)


def membership_key(cid: str, did: str) -> tuple[str, str]:
    return clinic_pk(cid), db.key("DOCTOR", did)


def get_membership(cid: str, did: str) -> Optional[dict[str, Any]]:
    """The membership item as stored, also while it is being removed (access checks use clinics.access)."""
    return db.get(clinic_pk(cid), db.key("DOCTOR", did))


def doctor_memberships(did: str) -> list[dict[str, Any]]:
    """Every clinic membership of a doctor (paged to the end), also those being removed."""
    return db.query_prefix(db.key("USER", did), "DOCTOROF#", index="GSI1")


NOT_REMOVING = "(attribute_not_exists(#st) OR #st <> :removing)"


def clinic_doctors_page(cid: str, limit: int, cursor: Optional[str], listed_only: bool = False,
                        flt: Optional[str] = None, vals: Optional[dict[str, Any]] = None,
                        names: Optional[dict[str, str]] = None) -> tuple[list[dict], Optional[str]]:
    """A page of a clinic's doctors, never those being removed."""
    conditions = [NOT_REMOVING] + ([flt] if flt else []) + (["listed = :yes"] if listed_only else [])
    values = {**db.values(removing=REMOVING), **(db.values(yes=True) if listed_only else {}), **(vals or {})}
    return db.query_page(clinic_pk(cid), "DOCTOR#", limit, cursor, filter_expression=" AND ".join(conditions),
                         filter_values=values, filter_names={"#st": "status", **(names or {})})


def listing_key(specialty: str, did: str, cid: str) -> tuple[str, str]:
    return db.key("SPECIALTY", specialty), f"DOCTOR#{did}#CLINIC#{cid}"


def listing_item(specialty: str, did: str, cid: str, fields: dict[str, Any]) -> dict[str, Any]:
    pk, sk = listing_key(specialty, did, cid)
    return {"PK": pk, "SK": sk, "type": "doctor_listing", "specialty": specialty, "doctor_id": did,
            "clinic_id": cid, **fields}


def write_listings(tx: db.Tx, member: dict[str, Any], fields: dict[str, Any], listed: bool,
                   specs: list[str]) -> db.Tx:
    """A doctor's catalogue items in one clinic. Items: ``unlist:<spec>``, ``list:<spec>``, ``member``
    (exists and is not being removed)."""
    did, cid = member["doctor_id"], member["clinic_id"]
    for s in member.get("listed_specialties", []):
        if s not in specs:
            tx.delete(f"unlist:{s}", *listing_key(s, did, cid))
    for s in specs:
        tx.put(f"list:{s}", listing_item(s, did, cid, fields))
    return tx.put("member", {**member, **fields, "listed": listed, "listed_specialties": specs},
                  condition="attribute_exists(PK) AND " + NOT_REMOVING,
                  expr_values=db.values(removing=REMOVING), names={"#st": "status"})


def mark_doctor_removing(tx: db.Tx, member: dict[str, Any], decision: str, now: int) -> db.Tx:
    """The first, atomic step of removing a doctor: the membership says ``removing`` (gone for every
    access check) and leaves the catalogue. Items: ``member`` (exists, not yet removing), ``unlist:<spec>``."""
    did, cid = member["doctor_id"], member["clinic_id"]
    tx.update("member", clinic_pk(cid), db.key("DOCTOR", did),
              "SET #st = :removing, future_bookings = :fb, listed = :no, removing_since = :now",
              condition="attribute_exists(PK) AND " + NOT_REMOVING,
              expr_values=db.values(removing=REMOVING, fb=decision, no=False, now=now), names={"#st": "status"})
    for s in member.get("listed_specialties", []):
        tx.delete(f"unlist:{s}", *listing_key(s, did, cid))
    return tx


def removal_cleanup(cid: str, did: str, now_iso: str) -> list[tuple[str, str]]:
    """Keys left to delete after a doctor was marked removed: their templates and the exceptions and
    duty shifts (with their references) of this clinic that have not ended. Deleting them is idempotent."""
    keys: list[tuple[str, str]] = []
    for item in schedule_for(did, now_iso, FOREVER):
        if item.get("clinic_id") != cid:
            continue
        keys.append((item["PK"], item["SK"]))
        if item["type"] != "schedule_template":
            keys.append((item["PK"], ref_sk(item["item_id"])))
    return keys


def delete_keys(tx: db.Tx, keys: list[tuple[str, str]]) -> db.Tx:
    for pk, sk in keys:
        tx.delete(f"delete:{pk}:{sk}", pk, sk)
    return tx


def delete_membership(tx: db.Tx, cid: str, did: str) -> db.Tx:
    """The last step of removing a doctor. Item: ``member`` (still marked removing)."""
    return tx.delete("member", clinic_pk(cid), db.key("DOCTOR", did), condition="#st = :removing",
                     expr_values=db.values(removing=REMOVING), names={"#st": "status"})


def future_bookings(cid: str, did: str, from_iso: str, to_iso: str) -> list[dict[str, Any]]:
    """A doctor's active bookings in a clinic starting in [from, to), from the clinic's calendar (GSI4)."""
    names = {"#st": "status"}
    statuses = {f"s{i}": s for i, s in enumerate(ACTIVE_BOOKING_STATUSES)}
    return db.query_all(
        "GSI4PK = :pk AND GSI4SK BETWEEN :a AND :b",
        db.values(pk=db.key("CAL", cid), a=from_iso, b=to_iso, d=did, **statuses), index="GSI4", names=names,
        filter_expression=f"doctor_id = :d AND #st IN ({', '.join(':' + k for k in statuses)})")


def doctor_future_bookings(did: str, from_iso: str, to_iso: str) -> list[dict[str, Any]]:
    """A doctor's active bookings in every clinic starting in [from, to), from their agenda (GSI3)."""
    names = {"#st": "status"}
    statuses = {f"s{i}": s for i, s in enumerate(ACTIVE_BOOKING_STATUSES)}
    return db.query_all(
        "GSI3PK = :pk AND GSI3SK BETWEEN :a AND :b",
        db.values(pk=db.key("AGENDA", did), a=from_iso, b=to_iso, **statuses), index="GSI3", names=names,
        filter_expression=f"#st IN ({', '.join(':' + k for k in statuses)})")


def catalog_doctors(specialty: Optional[str], cid: Optional[str], modality: Optional[str], language: Optional[str],
                    limit: int, cursor: Optional[str]) -> tuple[list[dict], Optional[str]]:
    """A page of the doctor catalogue: by specialty (optionally in one clinic), or a clinic's listed doctors;
    filtered by modality and language."""
    conditions: list[str] = []
    vals: dict[str, Any] = {}
    names: dict[str, str] = {}
    if modality:
        conditions.append("contains(modalities, :mod)")
        vals["mod"] = modality
    if language:
        conditions.append("contains(#langs, :lang)")
        vals["lang"] = language
        names["#langs"] = "languages"
    if specialty:
        if cid:
            conditions.append("clinic_id = :cid")
            vals["cid"] = cid
        return doctors_by_specialty(specialty, limit, cursor, " AND ".join(conditions) or None,
                                    db.values(**vals) if vals else {}, names or None)
    return clinic_doctors_page(cid or "", limit, cursor, listed_only=True, flt=" AND ".join(conditions) or None,
                               vals=db.values(**vals) if vals else None, names=names or None)


def doctors_by_specialty(specialty: str, limit: int, cursor: Optional[str], flt: Optional[str],
                         vals: dict[str, Any], names: Optional[dict[str, str]]) -> tuple[list[dict], Optional[str]]:
    return db.query_page(db.key("SPECIALTY", specialty), "DOCTOR#", limit, cursor,
                         filter_expression=flt, filter_values=vals, filter_names=names)


# ------------------------------------------------------------------ schedules

DATED_KINDS = ("DUTY", "EXCEPTION")


def template_sk(tid: str) -> str:
    return db.key("TEMPLATE", tid)


def dated_sk(kind: str, end_utc_iso: str, item_id: str) -> str:
    """``DUTY#<end utc>#<id>`` / ``EXCEPTION#<end utc>#<id>``: sorted by end, so history falls behind."""
    return f"{kind}#{end_utc_iso}#{item_id}"


def ref_sk(item_id: str) -> str:
    return db.key("REF", item_id)


def _expires(end: datetime) -> int:
    return int((end + timedelta(days=KEEP_HISTORY_DAYS)).timestamp())


def duty_shift_item(did: str, cid: str, bid: str, specialty: str, zone_name: str, start: datetime, end: datetime,
                    now: int, sid: Optional[str] = None) -> dict[str, Any]:
    from chalicelib.core.ids import new_id
    from chalicelib.core.tz import zone

    sid = sid or new_id()
    tz = zone(zone_name)
    end_iso = clock.iso(end)
    return {"PK": doctor_pk(did), "SK": dated_sk("DUTY", end_iso, sid), "type": "duty_shift", "item_id": sid,
            "doctor_id": did, "clinic_id": cid, "branch_id": bid, "specialty": specialty, "time_zone": zone_name,
            "starts_at": start.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": end.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
            "starts_at_utc": clock.iso(start), "ends_at_utc": end_iso, "created_at": now,
            "expires_at": _expires(end),
            # duty rosters by specialty, ordered by end: "who is on shift now" is one query
            "GSI3PK": db.key("DUTY", specialty), "GSI3SK": f"{end_iso}#{sid}"}


def exception_bounds(fields: dict[str, Any], zone_name: Optional[str]) -> tuple[datetime, datetime]:
    """When an exception begins and ends in UTC. Without a zone (a leave) the bounds are the widest any
    zone gives: its first day starts at UTC+14 and its last day ends at UTC-12."""
    from datetime import time

    from chalicelib.core.tz import local_to_utc

    first, last = date.fromisoformat(fields["date_from"]), date.fromisoformat(fields["date_until"])
    if zone_name:
        start = local_to_utc(first, time.fromisoformat(fields.get("start") or "00:00"), zone_name)
        if fields.get("end"):
            overnight = time.fromisoformat(fields["end"]) <= time.fromisoformat(fields.get("start") or "00:00")
            end = local_to_utc(last + timedelta(days=1 if overnight else 0), time.fromisoformat(fields["end"]),
                               zone_name)
        else:
            end = local_to_utc(last + timedelta(days=1), time(0, 0), zone_name)
        return start, end
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc) - timedelta(hours=14)
    overnight = bool(fields.get("start") and fields.get("end")) and fields["end"] <= fields["start"]
    end = datetime.combine(last + timedelta(days=2 if overnight else 1), datetime.min.time(),
                           tzinfo=timezone.utc) + timedelta(hours=12)
    return start, end


def exception_item(did: str, cid: str, xid: str, fields: dict[str, Any], zone_name: Optional[str],
                   now: int) -> dict[str, Any]:
    start, end = exception_bounds(fields, zone_name)
    item = {"PK": doctor_pk(did), "SK": dated_sk("EXCEPTION", clock.iso(end), xid), "type": "schedule_exception",
            "item_id": xid, "doctor_id": did, "clinic_id": cid, **fields, "created_at": now,
            "starts_at_utc": clock.iso(start), "ends_at_utc": clock.iso(end), "expires_at": _expires(end)}
    if zone_name:
        item["time_zone"] = zone_name
    return item


def template_item(did: str, cid: str, tid: str, fields: dict[str, Any], zone_name: str, now: int) -> dict[str, Any]:
    return {"PK": doctor_pk(did), "SK": template_sk(tid), "type": "schedule_template", "item_id": tid,
            "doctor_id": did, "clinic_id": cid, "time_zone": zone_name, **fields, "created_at": now}


def _ref_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": ref_sk(item["item_id"]), "type": "schedule_ref", "target_sk": item["SK"],
            "clinic_id": item["clinic_id"], "expires_at": item["expires_at"]}


def _is_dated(item: dict[str, Any]) -> bool:
    return item["type"] in ("duty_shift", "schedule_exception")


def schedule_guard(tx: db.Tx, did: str, seen_version: int) -> db.Tx:
    """Serialises schedule changes of one doctor: two writers cannot both pass the overlap check.
    Item: ``guard``."""
    if seen_version == 0:
        return tx.put_new("guard", {"PK": doctor_pk(did), "SK": "SCHEDULE", "type": "schedule_guard", "version": 1})
    return tx.add("guard", db.update_versioned_op(doctor_pk(did), "SCHEDULE", {}, seen_version))


def schedule_version(did: str) -> int:
    item = db.get(doctor_pk(did), "SCHEDULE")
    return int(item["version"]) if item else 0


def add_schedule_item(tx: db.Tx, item: dict[str, Any]) -> db.Tx:
    """Items: ``item`` (new) and, for a dated item, ``ref`` (its id -> sort key)."""
    tx.put_new("item", item)
    if _is_dated(item):
        tx.put_new("ref", _ref_item(item))
    return tx


def put_schedule_item(item: dict[str, Any]) -> None:
    """Write a schedule item (and its reference) as is: seeds, migrations, tests."""
    tx = db.Tx().put("item", item)
    if _is_dated(item):
        tx.put("ref", _ref_item(item))
    tx.commit()


def get_schedule_item(did: str, kind: str, item_id: str) -> Optional[dict[str, Any]]:
    """A template, exception or duty shift by its id (``kind`` TEMPLATE, EXCEPTION or DUTY)."""
    if kind == "TEMPLATE":
        return db.get(doctor_pk(did), template_sk(item_id))
    ref = db.get(doctor_pk(did), ref_sk(item_id))
    if ref is None or not ref["target_sk"].startswith(kind + "#"):
        return None
    return db.get(doctor_pk(did), ref["target_sk"])


def delete_schedule_item(tx: db.Tx, item: dict[str, Any], cid: str) -> db.Tx:
    """Items: ``item`` (of this clinic), ``ref``."""
    tx.delete("item", item["PK"], item["SK"], condition="clinic_id = :c", expr_values=db.values(c=cid))
    if _is_dated(item):
        tx.delete("ref", item["PK"], ref_sk(item["item_id"]))
    return tx


def templates(did: str) -> list[dict[str, Any]]:
    return db.query_prefix(doctor_pk(did), "TEMPLATE#")


_DATED_TYPES = {"DUTY": "duty_shift", "EXCEPTION": "schedule_exception"}


def schedule_for(did: str, from_iso: str, to_iso: str,
                 kinds: tuple[str, ...] = DATED_KINDS) -> list[dict[str, Any]]:
    """A doctor's schedule in every clinic that matters for [from, to): all weekly templates, and the
    exceptions and duty shifts (``kinds``) that end after ``from_iso`` and begin before ``to_iso``.

    One query (paged to the end): the sort keys from the first dated kind's ``<kind>#<from>`` to the last
    template, which sort after them (``DUTY#`` < ``EXCEPTION#`` < ... < ``TEMPLATE#``). Dated history before
    ``from_iso`` of the first kind is never read; the few other items between (the profile, the schedule guard,
    the references of dated items, exceptions that ended when duty shifts are asked for) are dropped by the
    filter. Legacy dated items (no ``expires_at``, see ``rekey_legacy_schedule``) stay invisible as before."""
    if not kinds:
        return templates(did)
    types = {f"k{i}": _DATED_TYPES[k] for i, k in enumerate(sorted(kinds))}
    dated = " OR ".join(f"#t = :{n}" for n in types)
    return db.query_all(
        "PK = :pk AND SK BETWEEN :a AND :b",
        db.values(pk=doctor_pk(did), a=f"{min(kinds)}#{from_iso}", b="TEMPLATE#~", tpl="schedule_template",
                  frm=from_iso, to=to_iso, **types),
        names={"#t": "type", "#s": "starts_at_utc", "#e": "ends_at_utc", "#x": "expires_at"},
        filter_expression=f"#t = :tpl OR (({dated}) AND attribute_exists(#x) AND #e >= :frm "
                          "AND (attribute_not_exists(#s) OR #s < :to))")


def rekey_legacy_schedule(did: str) -> int:
    """A one-off migration: exceptions and duty shifts written under the old keys (``DUTY#<id>``,
    ``EXCEPTION#<id>``, invisible to ``schedule_for``) move to their dated keys, with TTL and a
    reference. Idempotent; returns how many items moved."""
    moved = 0
    for kind in DATED_KINDS:
        # an old sort key holds a ULID (today "01..."), a dated one an ISO year ("2...")
        legacy = [i for i in db.query_all("PK = :pk AND SK BETWEEN :a AND :b",
                                          db.values(pk=doctor_pk(did), a=f"{kind}#0", b=f"{kind}#1~"))
                  if i["SK"].count("#") == 1]
        for old in legacy:
            if kind == "DUTY":
                end = datetime.fromisoformat(old["ends_at_utc"].replace("Z", "+00:00"))
                extra: dict[str, Any] = {}
            else:
                start, end = exception_bounds(old, old.get("time_zone"))
                extra = {"starts_at_utc": clock.iso(start), "ends_at_utc": clock.iso(end)}
            item = {**old, **extra, "SK": dated_sk(kind, clock.iso(end), old["item_id"]), "expires_at": _expires(end)}
            db.Tx().put("item", item).put("ref", _ref_item(item)) \
                .delete("legacy", old["PK"], old["SK"]).commit()
            moved += 1
    return moved


def delete(pk: str, sk: str, condition: Optional[str] = None, vals: Optional[dict[str, Any]] = None) -> bool:
    params: dict[str, Any] = {"TableName": db.table_name(), "Key": db.item_key(pk, sk)}
    if condition:
        params["ConditionExpression"] = condition
        params["ExpressionAttributeValues"] = vals or {}
    try:
        db.ddb().delete_item(**params)
        return True
    except Exception as exc:
        if _conflict_failure(exc):
            return False
        raise


def delete_pending_invitation(iid: str) -> bool:
    """Remove an invitation that was never delivered (only while still pending)."""
    return delete(invitation_pk(iid), "INVITE", "attribute_exists(PK) AND attempts = :none",
                  db.values(none=0))
