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
