"""The card's rules under real concurrency on DynamoDB Local: one entry edited at once by many requests
(no update lost), a section filled at once past its cap."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib import bootstrap
from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from chalicelib.records import models as m
from chalicelib.records import store
from tests.unit.booking_setup import patient

N = 12


def test_parallel_edits_of_one_entry_one_wins_and_one_earlier_version_is_kept(client, outbox, fixed_clock):
    p = patient(client, outbox, "+79150000001")
    me = Caller(p["user_id"], "patient", "s")
    svc = bootstrap.records()
    eid = svc.add_entry(me, "allergies", m.AllergyIn(substance="Penicillin", severity="severe"))["entry_id"]

    def edit(i):
        try:
            return svc.edit_entry(me, "allergies", eid, m.AllergyIn(substance=f"Penicillin {i}", severity="mild"))
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(edit, range(N)))
    won = [r for r in results if isinstance(r, dict)]
    assert won and results.count("version_conflict") == N - len(won), results
    # No update is lost: every edit that was answered 200 is one version, each on top of the one before it,
    # and every earlier version is kept.
    versions = svc.entry_versions(me, "allergies", eid)["items"]
    assert [v["version"] for v in versions] == list(range(1, len(won) + 2))
    assert versions[0]["data"]["substance"] == "Penicillin"
    assert sorted(v["data"]["substance"] for v in versions[1:]) == sorted(r["data"]["substance"] for r in won)
    assert sorted(r["version"] for r in won) == list(range(2, len(won) + 2))


def test_a_section_filled_at_once_stops_exactly_at_its_cap(client, outbox, fixed_clock, monkeypatch):
    p = patient(client, outbox, "+79150000002")
    me = Caller(p["user_id"], "patient", "s")
    svc = bootstrap.records()
    monkeypatch.setattr(svc.settings, "records_entries_per_section_max", 7)

    def add(i):
        try:
            return svc.add_entry(me, "notes", m.NoteIn(text=f"note {i}"))["entry_id"]
        except AppError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(add, range(N)))
    added = [r for r in results if len(r) == 26]
    assert len(added) == 7 and results.count("section_full") == N - 7, results
    entries = store.read_card(p["user_id"])[0]
    assert sorted(e["entry_id"] for e in entries) == sorted(added)


def test_a_sign_racing_edits_in_the_same_second_signs_only_a_draft_nobody_changed(client, outbox, fixed_clock):
    """The clock stands still: every write lands in the same second, so only the revision counter tells one
    draft from the next. No successful save is ever lost, and the signed text is the last saved draft."""
    from tests.unit.records_world import after_the_visit, records_world

    w = records_world(client, outbox, fixed_clock)
    after_the_visit(client, w, fixed_clock)
    svc = bootstrap.records()
    doc = Caller(w["doctor"]["user_id"], "doctor", "s", mfa="totp")
    bid = w["visit"]["booking_id"]
    base = {"complaints": "cough", "diagnosis": "asthma", "recommendations": "inhaler"}
    svc.conclusions.save_draft(doc, bid, m.ConclusionIn(findings="draft 0", **base))

    def work(i):
        try:
            if i % 3 == 0:
                return ("sign", svc.conclusions.sign(doc, bid))
            return ("save", svc.conclusions.save_draft(doc, bid, m.ConclusionIn(findings=f"draft {i}", **base)))
        except AppError as exc:
            return ("error", exc.code)

    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(work, range(1, 3 * N)))
    assert all(r[1] == "conclusion_signed" for r in results if r[0] == "error"), results
    signed = [r[1] for r in results if r[0] == "sign"]
    saved = [r[1] for r in results if r[0] == "save"]
    assert len(signed) <= 1
    revisions = [s["revision"] for s in saved]
    assert len(set(revisions)) == len(revisions), revisions  # no two saves both "won" the same revision
    [final] = store.conclusions_of_visit(w["patient"]["user_id"], bid)
    if signed:
        (s,) = signed
        assert final["status"] == "signed" and s["revision"] == int(final["rev"])
        before = [x for x in saved if x["revision"] == s["revision"] - 1]
        assert all(x["revision"] < s["revision"] for x in saved)  # nothing saved over the signature
        assert s["findings"] == (before[0]["findings"] if before else "draft 0")
    else:
        assert final["status"] == "draft" and max(revisions) == int(final["rev"])
