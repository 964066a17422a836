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
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
CONFIG = ROOT / "schemathesis.toml"
SESSION_ENDING = ["logOut", "revokeSession"]


def run_schemathesis(base_url: str, token: str, *selection: str) -> tuple[int, str, float]:
    st = str(Path(sys.executable).with_name("st"))
    cmd = [st, "--no-color", "--config-file", str(CONFIG), "run", str(SPEC), "--url", base_url, *selection]
    env = {**os.environ, "CLINIC_FUZZ_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def summary(output: str) -> str:
    """The 'Test cases:' line of a schemathesis run, e.g. '1446 generated, 1446 passed, 26 skipped'."""
    found = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return found.group(1).strip() if found else "(no summary)"


def test_every_operation_keeps_its_contract_under_fuzzing(live_server):
    # Sign everyone up first: the fuzzer soon spends the per-client SMS allowance (20 an hour).
    main_user = live_server.sign_up("+79160000001")
    sessions_user = live_server.sign_up("+79160000002")
    logout_user = live_server.sign_up("+79160000003")
    status, me = live_server.request("GET", "/me", token=main_user["access_token"])
    assert status == 200 and me["phone"] == "+79160000001", me

    passes = [
        ("account", main_user["access_token"],
         [arg for op in SESSION_ENDING for arg in ("--exclude-operation-id", op)]),
        ("sessions", sessions_user["access_token"],
         ["--include-operation-id", "listSessions", "--include-operation-id", "revokeSession"]),
        # One operation and no links: the stateful phase has nothing to chain.
        ("logout", logout_user["access_token"],
         ["--include-operation-id", "logOut", "--phases", "examples,coverage,fuzzing"]),
    ]
    report = []
    for name, token, selection in passes:
        code, output, seconds = run_schemathesis(live_server.base_url, token, *selection)
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
    print("\n" + "\n".join(report))
