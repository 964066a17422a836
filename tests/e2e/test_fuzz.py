"""The running server keeps its contract under fuzzing.

Schemathesis (settings in schemathesis.toml) runs every operation of openapi.yaml against
``chalice local`` on DynamoDB Local, in all four phases (examples, coverage, fuzzing,
stateful) with every check, as a patient signed up over real HTTP. Any failure — a 5xx, an
undocumented status, a body, header or content type the contract does not describe, invalid
data accepted, a protected operation answering without a token — fails the test.

The operations that end the caller's own session run in passes of their own, each as another
patient: once the fuzzer has ended a session, every protected operation can only answer 401,
and in the main pass that would leave them untested. Revoking a session runs with listing
them, so the stateful phase follows the `RevokeSession` link to a real session id; logging out
runs alone (its first example ends the session, the rest must then be a documented 401).

The clinic operations run as the staff role each is for, so valid requests reach the service
rather than stopping at 403: the clinic administrator (TOTP-level session) for the clinic's own
operations and the public catalogue, the platform administrator for review, the doctor for the
doctor's own profile and schedule. `clinic_id`, `branch_id`, `service_id` and `doctor_id` path
parameters are the real ids of the active clinic built by the `clinic_world` fixture (passed in
FUZZ_* variables to the `[parameters]` of schemathesis.toml). Removing the doctor runs last, alone,
since its first example removes the doctor and every schedule operation after it would be 404.

Booking runs as each role it is for: the patient who holds the fixture's two bookings (one to
read, move and mark, one to cancel) books, moves, cancels, waits and queues with the clinic's
real ids and free slots; the doctor reads the agenda and feed, marks visits and invites; the
clinic administrator reads the clinic calendar and records payments.

The passes run as two chains at once, each pass its own schemathesis process (one worker each, see
schemathesis.toml): the account passes with the patient's notifications, and the clinic chain in its order.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
CONFIG = ROOT / "schemathesis.toml"
SESSION_ENDING = ["logOut", "revokeSession"]


IDENTITY_TAGS = ["auth", "me", "meta"]
# Booking operations, each run as the role it is for (see clinic_world for the ids they get).
PATIENT_BOOKING = ["freeSlots", "createBooking", "getBooking", "bookingIcs", "cancelBooking", "rescheduleBooking",
                   "acceptBooking", "declineBooking", "myBookings", "joinVideo", "postMessage", "listMessages",
                   "joinWaitlist", "myWaitlist", "leaveWaitlist", "joinUrgentQueue", "urgentQueueStatus",
                   "leaveUrgentQueue", "calendarFeed"]
DOCTOR_BOOKING = ["myAgenda", "myCalendarFeed", "completeVisit", "markNoShow", "inviteToVisit", "takeUrgent"]
CLINIC_BOOKING = ["confirmPayment", "clinicCalendar", "clinicFeedback", "reassignBooking"]
# Notifications, as the patient: devices, the inbox, settings, feedback.
PATIENT_NOTIFY = ["registerDevice", "listDevices", "removeDevice", "myInbox", "markMessageRead", "markAllRead",
                  "getNotificationSettings", "setNotificationSettings", "giveFeedback"]
CLINIC_TAGS = ["Clinics", "Staff", "Schedules", "Payouts", "Catalogue", "Webhooks"]
PLATFORM_ONLY = ["verifyClinic", "rejectClinic", "reviewQueue"]
DOCTOR_ONLY = ["getDoctorProfile", "putDoctorProfile", "mySchedule", "addMyLeave", "deleteMyLeave"]
LAST = ["removeDoctor"]
TOOL_CRASH = "AST constructor recursion depth mismatch"


def run_schemathesis(base_url: str, token: str, ids: dict[str, str], *selection: str) -> tuple[int, str, float]:
    st = str(Path(sys.executable).with_name("st"))
    cmd = [st, "--no-color", "--config-file", str(CONFIG), "run", str(SPEC), "--url", base_url, *selection]
    env = {**os.environ, "CLINIC_FUZZ_TOKEN": token, "PYTHONUNBUFFERED": "1", **ids}
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def run_chain(base_url: str, ids: dict[str, str],
              chain: list[tuple[str, str, list[str]]]) -> list[tuple[str, int, str, float]]:
    """The passes of one chain in order; a pass that fails stops the chain (what follows depends on it)."""
    outcomes = []
    for name, token, selection in chain:
        code, output, seconds = run_schemathesis(base_url, token, ids, *selection)
        if code != 0 and TOOL_CRASH in output and not re.search(r"[1-9]\d* unique failures?", output):
            # Not a finding about the API: CPython 3.11 before 3.11.8 can raise this SystemError
            # when two threads (schemathesis workers) build an AST at once (python/cpython#106905),
            # here inside Hypothesis while it describes a filter. Run the pass once more.
            print(f"\n---- pass '{name}' crashed in the tool ({TOOL_CRASH}); running it again ----")
            code, output, seconds = run_schemathesis(base_url, token, ids, *selection)
        outcomes.append((name, code, output, seconds))
        if code != 0:
            break
    return outcomes


def summary(output: str) -> str:
    """The 'Test cases:' line of a schemathesis run, e.g. '1446 generated, 1446 passed, 26 skipped'."""
    found = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return found.group(1).strip() if found else "(no summary)"


def flags(name: str, values: list[str]) -> list[str]:
    return [arg for value in values for arg in (name, value)]


def test_every_operation_keeps_its_contract_under_fuzzing(live_server, clinic_world):
    # Sign everyone up first: the fuzzer soon spends the per-client SMS allowance (20 an hour).
    main_user = live_server.sign_up("+79160000001")
    sessions_user = live_server.sign_up("+79160000002")
    logout_user = live_server.sign_up("+79160000003")
    status, me = live_server.request("GET", "/me", token=main_user["access_token"])
    assert status == 200 and me["phone"] == "+79160000001", me

    world = clinic_world
    ids = {"FUZZ_CLINIC_ID": world["clinic_id"], "FUZZ_BRANCH_ID": world["branch_id"],
           "FUZZ_SERVICE_ID": world["service_id"], "FUZZ_DOCTOR_ID": world["doctor"]["user_id"],
           "FUZZ_PATIENT_ID": world["patient"]["user_id"], "FUZZ_BOOKING_ID": world["booking_id"],
           "FUZZ_CANCEL_BOOKING_ID": world["cancel_booking_id"], "FUZZ_BOOK_START": world["free_slots"][0],
           "FUZZ_RESCHEDULE_START": world["free_slots"][1], "FUZZ_INVITE_START": world["free_slots"][2],
           "FUZZ_SPECIALTY": world["specialty"], "FUZZ_CALENDAR_TOKEN": world["calendar_token"]}

    # Idempotent booking over real HTTP before the fuzzer touches anything: a repeat with the same
    # key and body is 200 with the same booking; the same key with another body is 422.
    patient = world["patient"]["token"]
    status, mine = live_server.request("GET", "/me/bookings", token=patient)
    assert status == 200 and {b["booking_id"] for b in mine["items"]} == {world["booking_id"], world["cancel_booking_id"]}
    first = next(b for b in mine["items"] if b["booking_id"] == world["booking_id"])
    replay = {"clinic_id": world["clinic_id"], "service_id": world["service_id"],
              "doctor_id": world["doctor"]["user_id"], "branch_id": world["branch_id"], "start": first["start"]["utc"]}
    status, same = live_server.request("POST", "/bookings", replay, patient, {"Idempotency-Key": "fixture-booking-0"})
    assert status == 200 and same["booking_id"] == world["booking_id"], same
    status, reused = live_server.request("POST", "/bookings", {**replay, "start": world["free_slots"][0]}, patient,
                                         {"Idempotency-Key": "fixture-booking-0"})
    assert status == 422 and reused["code"] == "idempotency_key_reused", reused

    passes = [
        ("account", main_user["access_token"],
         flags("--include-tag", IDENTITY_TAGS) + flags("--exclude-operation-id", SESSION_ENDING)),
        ("sessions", sessions_user["access_token"],
         ["--include-operation-id", "listSessions", "--include-operation-id", "revokeSession"]),
        # One operation and no links: the stateful phase has nothing to chain.
        ("logout", logout_user["access_token"],
         ["--include-operation-id", "logOut", "--phases", "examples,coverage,fuzzing"]),
        # Booking as the patient who holds the fixture's bookings, before the clinic administrator's
        # pass changes the clinic's services and hours.
        ("patient booking", patient, flags("--include-operation-id", PATIENT_BOOKING)),
        ("patient notifications", patient, flags("--include-operation-id", PATIENT_NOTIFY)),
        # The clinic's own operations, the public catalogue and the webhook, as its administrator.
        ("clinic admin", world["admin"]["token"],
         flags("--include-tag", CLINIC_TAGS) + flags("--exclude-operation-id", PLATFORM_ONLY + DOCTOR_ONLY + LAST)
         + flags("--include-operation-id", CLINIC_BOOKING)),
        # These two selections have no links between their operations: no stateful phase.
        ("platform admin", world["platform"]["token"],
         flags("--include-operation-id", PLATFORM_ONLY) + ["--phases", "examples,coverage,fuzzing"]),
        ("doctor", world["doctor"]["token"],
         flags("--include-operation-id", DOCTOR_ONLY + DOCTOR_BOOKING) + ["--phases", "examples,coverage,fuzzing"]),
        ("remove doctor", world["admin"]["token"],
         flags("--include-operation-id", LAST) + ["--phases", "examples,coverage,fuzzing"]),
    ]
    # Two chains at once, each in its own schemathesis process (no threads inside one: see TOOL_CRASH): the
    # account passes touch only their own patients and the patient's notifications nothing the clinic chain
    # reads; the clinic chain keeps its order (booking before the administrator changes the clinic, removing
    # the doctor last). One fuzzer process waits on the server
    # about half of its time, so the second one uses the other core.
    chains = [passes[:3] + [passes[4]], passes[3:4] + passes[5:]]  # about 2 and 6 minutes of the whole 8
    with ThreadPoolExecutor(max_workers=len(chains)) as pool:
        done = list(pool.map(lambda chain: run_chain(live_server.base_url, ids, chain), chains))
    report = []
    for outcomes in done:
        for name, code, output, seconds in outcomes:
            report.append(f"{name}: {summary(output)} in {seconds:.0f} s")
            print(f"\n---- schemathesis pass '{name}' ({seconds:.0f} s) ----\n{output[-4000:]}")
            assert code == 0, f"schemathesis found contract failures in pass '{name}':\n{output[-20000:]}"
            assert re.search(r"\b0 failures\b|[1-9]\d* passed", summary(output)), output[-3000:]

    status, _ = live_server.request("GET", "/me", token=sessions_user["access_token"])
    report.append(f"sessions pass ended its own session through DELETE /me/sessions/{{id}}: {status == 401}")
    # The main pass ran with a live session throughout, so protected operations were really
    # exercised as a signed-in patient and not only answered 401.
    status, _ = live_server.request("GET", "/me", token=main_user["access_token"])
    assert status == 200
    # The clinic passes ran as TOTP-level staff: the administrator's session still works, and the
    # last pass really removed the doctor (a 204 reached the service, not only 403s and 404s).
    status, doctors = live_server.request("GET", f"/clinics/{world['clinic_id']}/doctors", token=world["admin"]["token"])
    assert status == 200 and doctors["items"] == [], doctors
    # The booking operations reached the service with valid requests, not only 4xx: the second
    # booking was cancelled, a booking was made at the first free slot, and the doctor invited.
    status, cancelled = live_server.request("GET", f"/bookings/{world['cancel_booking_id']}", token=patient)
    assert status == 200 and cancelled["status"] == "cancelled_by_patient", cancelled
    status, calendar = live_server.request(
        "GET", f"/clinics/{world['clinic_id']}/calendar?date_from={date.today() - timedelta(days=1)}"
               f"&date_to={date.today() + timedelta(days=29)}", token=world["admin"]["token"])
    assert status == 200 and world["booking_id"] in {b["booking_id"] for b in calendar["items"]}, calendar
    status, mine = live_server.request("GET", "/me/bookings", token=patient)
    starts = {b["start"]["utc"]: b for b in mine["items"]}
    report.append(f"patient's bookings after fuzzing: {sorted((b['kind'], b['status']) for b in mine['items'])}")
    assert world["free_slots"][0] in starts, mine
    # Not asserted: the clinic administrator's pass may have closed that time (leave, a changed
    # service) before the doctor's pass invites.
    report.append(f"doctor's invitation holds the fixture's free slot: "
                  f"{starts.get(world['free_slots'][2], {}).get('kind') == 'invitation'}")
    print("\n" + "\n".join(report))
