"""The load model of docs/scale.md, replayed on DynamoDB Local: the hottest partitions at 100x the largest network.

1. Measure. Every operation of openapi.yaml runs once, as the right role, in the budget world (two years of
   history, tests/integration/test_call_budgets.py) on DynamoDB Local, with bench/scale_plugin.py recording
   the capacity units Amazon's engine reports for each call and the partitions (table and index) they land on.
2. Replay the model. Each operation's units per partition template are multiplied by its peak rate in MODEL
   (requests per second at the peak second, at 5,400 clinics and 13,000 doctors), summed per template, and
   the hottest partition of a template gets the share SHARE gives it (one value for a platform-wide key, the
   busiest doctor, clinic, city or specialty for the others).
3. Report every partition template, its hottest partition's units against DynamoDB's per-partition limits
   (1,000 WCU, 3,000 RCU per second), marking those past 10 %, between the SCALE markers of docs/scale.md.

``python -m bench.scale`` (about a minute). ``--json FILE`` skips step 1 and reads a measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "scale.md"
WCU_LIMIT, RCU_LIMIT = 1000.0, 3000.0

# Peak requests per second at 100x the largest network of the sources (5,400 centres, 13,000 doctors), from the
# daily volumes of docs/scale.md: peak second = daily volume x 12 % in the peak hour / 3,600 s x 3 (burst),
# i.e. daily x 1e-4. Operations not listed run at DEFAULT_RATE (onboarding and administration).
DAILY = {
    # patients finding and booking (208,000 visits a day; 260,000 bookings made, 1.25 per visit)
    "catalogClinics": 520_000, "catalogClinic": 520_000, "catalogServices": 520_000,
    "catalogDoctors": 1_300_000, "catalogDoctor": 1_300_000, "freeSlots": 3_900_000,
    "createBooking": 260_000, "getBooking": 780_000, "myBookings": 1_000_000,
    "cancelBooking": 39_000, "rescheduleBooking": 26_000, "confirmPayment": 130_000,
    "stripeWebhook": 260_000, "bookingIcs": 50_000,
    # doctors and reception
    "completeVisit": 208_000, "markNoShow": 10_000, "acceptBooking": 60_000, "declineBooking": 5_000,
    "inviteToVisit": 20_000, "myAgenda": 390_000, "mySchedule": 65_000, "clinicCalendar": 1_600_000,
    "clinicSchedule": 100_000, "addException": 5_000,
    # telemedicine
    "joinVideo": 125_000, "postMessage": 420_000, "listMessages": 840_000,
    # waitlist and the urgent queue (20,000 urgent visits a day; a waiting patient's app polls every 15 s)
    "joinWaitlist": 10_000, "myWaitlist": 20_000, "leaveWaitlist": 3_000,
    "joinUrgentQueue": 20_000, "urgentQueueStatus": 1_600_000, "leaveUrgentQueue": 3_000, "takeUrgent": 20_000,
    # identity (2.6 million patients, 500,000 active a day)
    "signUp": 30_000, "verifySignUp": 30_000, "resendCode": 5_000, "logIn": 300_000, "verifyLogIn": 300_000,
    "refreshTokens": 2_000_000, "getMe": 1_000_000, "patchMe": 10_000, "logOut": 50_000,
    "requestPasswordReset": 5_000, "confirmPasswordReset": 4_000, "listSessions": 5_000,
    "getDoctorProfile": 13_000, "myClinics": 50_000, "getClinic": 100_000,
}
PEAK_FACTOR = 0.12 / 3600 * 3
MODEL = {op: n * PEAK_FACTOR for op, n in DAILY.items()}
# calendar apps poll feeds around the clock (13,000 doctors, about once an hour), not at the peak hour
MODEL["calendarFeed"] = 13_000 * 24 / 86_400 * 2
MODEL["myCalendarFeed"] = 0.05
DEFAULT_RATE = 0.05

# The hottest partition's share of a template's traffic at scale.
def _shards() -> tuple[int, int]:
    sys.path.insert(0, str(ROOT))
    from chalicelib.booking.store import HOLD_SHARDS
    from chalicelib.core.events import OUTBOX_SHARDS

    return HOLD_SHARDS, OUTBOX_SHARDS


HOLD_SHARDS, OUTBOX_SHARDS = _shards()
SHARE = [  # (prefix of the template after "index|", share, what it is)
    ("HOLDS#", 1 / HOLD_SHARDS, f"{HOLD_SHARDS} shards by booking id"),
    ("HOLDS", 1.0, "one platform-wide value"),
    ("DEADLETTER", 1.0, "one platform-wide value"),
    ("CLINICS#", 0.9, "clinics by status: nearly all are active"),
    ("OUTBOX#", 1 / OUTBOX_SHARDS, f"{OUTBOX_SHARDS} shards by event id"),
    ("QUEUE#", 0.4, "the busiest specialty (therapist) takes 40 % of urgent visits"),
    ("URGENT#", 0.4, "the busiest specialty"),
    ("DUTY#", 0.4, "the busiest specialty"),
    ("SPECIALTY#", 0.25, "the most searched specialty"),
    ("CITY#", 0.3, "Moscow: 30 % of the catalogue"),
    ("CAL#", 20 / 5400, "the largest clinic: 20x the average of 5,400"),
    ("CLINIC#", 20 / 5400, "the largest clinic"),
    ("STRIPEACCT#", 20 / 5400, "the largest clinic's account"),
    ("RESUSE#", 10 / 10_800, "the busiest of ~10,800 rooms and machines"),
    ("LOCK#R#", 10 / 10_800, "one room's days"),
    ("AGENDA#", 5 / 13_000, "the busiest doctor: 5x the average of 13,000"),
    ("DOCTOR#", 5 / 13_000, "the busiest doctor"),
    ("LOCK#D#", 5 / 13_000, "one doctor's days"),
    ("WAITING#", 5 / 13_000, "the busiest doctor's waitlist"),
    ("WAIT#", 5 / 13_000, "the busiest doctor's waitlist"),
    ("RATE#", 0.05, "one address behind a carrier NAT carrying 5 % of sign-ins"),
]
SPREAD = 1 / 100_000  # per-person and per-object keys (users, sessions, bookings, events): spread wide


def share(key: str) -> tuple[float, str]:
    _, tmpl = key.split("|", 1)
    for prefix, s, why in SHARE:
        if tmpl.startswith(prefix):
            return s, why
    return SPREAD, "per person or object"


def measure() -> dict[str, dict[str, dict[str, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "scale.json")
        env = {**os.environ, "SCALE_OUT": out}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "bench.scale_plugin",
               "tests/integration/test_call_budgets.py::test_operation_stays_within_its_dynamodb_call_budget"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        return json.loads(Path(out).read_text())


def project(units: dict[str, dict[str, dict[str, float]]]) -> list[dict]:
    total: dict[str, dict[str, float]] = defaultdict(lambda: {"r": 0.0, "w": 0.0})
    top_op: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for op, keys in units.items():
        rate = MODEL.get(op, DEFAULT_RATE)
        for key, u in keys.items():
            if key.endswith("|?"):
                continue
            for kind in ("r", "w"):
                total[key][kind] += rate * u[kind]
                top_op[key][op] += rate * (u["r"] / RCU_LIMIT + u["w"] / WCU_LIMIT)
    rows = []
    for key, t in total.items():
        s, why = share(key)
        r, w = t["r"] * s, t["w"] * s
        load = max(r / RCU_LIMIT, w / WCU_LIMIT)
        ops = sorted(top_op[key].items(), key=lambda kv: -kv[1])[:3]
        rows.append({"key": key, "rcu": r, "wcu": w, "load": load, "share": s, "why": why,
                     "ops": [op for op, v in ops if v > 0]})
    rows.sort(key=lambda row: -row["load"])
    return rows


def totals(units: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Units per second over the whole table and each index at the peak (the account's per-table quota)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"r": 0.0, "w": 0.0})
    for op, keys in units.items():
        rate = MODEL.get(op, DEFAULT_RATE)
        for key, u in keys.items():
            where = key.split("|", 1)[0]
            for kind in ("r", "w"):
                out[where][kind] += rate * u[kind]
    return dict(out)


def render(rows: list[dict], sums: dict[str, dict[str, float]]) -> str:
    lines = ["<!-- SCALE:BEGIN (written by `python -m bench.scale`; do not edit by hand) -->", "",
             "Whole table and indexes at the peak second (on-demand tables start with a quota of 40,000 RCU and "
             "40,000 WCU per table):", "", "| where | RCU/s | WCU/s |", "|---|---:|---:|"]
    for where in sorted(sums):
        lines.append(f"| {where} | {sums[where]['r']:.0f} | {sums[where]['w']:.0f} |")
    lines += ["", "The hottest partition of each partition template:", "",
             "| partition (index \\| key) | hottest partition's share | RCU/s | WCU/s | of a partition | "
             "driven by |", "|---|---|---:|---:|---:|---|"]
    for row in rows:
        mark = " **past 10 %**" if row["load"] > 0.10 else ""
        lines.append(f"| `{row['key'].replace('|', ' | ')}` | {row['why']} | {row['rcu']:.1f} | {row['wcu']:.1f} | "
                     f"{row['load'] * 100:.1f} %{mark} | {', '.join(row['ops'])} |")
    hot = [row["key"] for row in rows if row["load"] > 0.10]
    lines += ["", f"{len(rows)} partition templates; past 10 % of a partition: {', '.join(hot) or 'none'}.", "",
              "<!-- SCALE:END -->"]
    return "\n".join(lines)


def write(text: str) -> None:
    doc = DOC.read_text()
    head, rest = doc.split("<!-- SCALE:BEGIN", 1)
    DOC.write_text(head + text + rest.split("<!-- SCALE:END -->", 1)[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="read a measurement instead of running the budget world")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    units = json.loads(Path(args.json).read_text()) if args.json else measure()
    rows = project(units)
    text = render(rows, totals(units))
    print(text)
    if not args.no_write:
        write(text)
    hot = [row["key"] for row in rows if row["load"] > 0.10]
    print("past 10 % of a partition:", ", ".join(hot) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
