"""`make run` as a newcomer meets it: it starts the whole backend, answers, and stops when asked, by
SIGTERM (a process manager, `kill`) or SIGINT (Ctrl-C), within seconds, taking every process it
started with it (DynamoDB Local's Java process included) and leaving nothing listening on the API's,
moto's or DynamoDB Local's port (it used to hang in its signal handler and leave them running)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local import dynamodb_local
from local.dynamodb_local import free_port

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 20  # generous on 2 shared cores; the runner stops its children with a 10 s grace each


def descendants_of(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", [
    pytest.param(("local.run", signal.SIGTERM), id="local.run-SIGTERM"),
    pytest.param(("local.run", signal.SIGINT), id="local.run-SIGINT"),
    pytest.param(("make run", signal.SIGTERM), id="make-run-SIGTERM"),
])
def test_the_local_backend_starts_answers_and_stops_when_asked(tmp_path, how):
    what, sig = how
    if dynamodb_local.available() is not None and os.environ.get("CI") != "true":
        pytest.skip(f"DynamoDB Local cannot start here: {dynamodb_local.available()}")
    port = free_port()
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    # `make run` is held to what it runs and how it passes the signal on, not to installing the venv.
    argv = ([sys.executable, "-m", "local.run"] if what == "local.run"
            else ["make", "--no-print-directory", "-o", ".venv/.installed", "run"])
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 180
        while "is running" not in log_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        banner = log_path.read_text()
        assert "is running" in banner, banner[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        ddb_port = int(re.search(r"DynamoDB Local at http://127\.0\.0\.1:(\d+)", banner).group(1))
        moto_port = int(re.search(r"moto server at http://127\.0\.0\.1:(\d+)", banner).group(1))
        ports = {"API": port, "DynamoDB Local": ddb_port, "moto": moto_port}
        assert {name: listening(p) for name, p in ports.items()} == dict.fromkeys(ports, True)
        started = descendants_of(proc.pid)
        assert any("DynamoDBLocal.jar" in cmdline(p) for p in started), [cmdline(p) for p in started]
        assert any("local.serve" in cmdline(p) for p in started), [cmdline(p) for p in started]

        proc.send_signal(sig)
        # Within seconds: wait() raises TimeoutExpired if it is not stopped by then.
        code = proc.wait(timeout=STOP_WITHIN_S)
        assert code == 0 if what == "local.run" else code in (0, 2, -signal.SIGTERM), log_path.read_text()[-3000:]
        deadline = time.monotonic() + 5
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {p: cmdline(p) for p in started if alive(p)} == {}
        assert {name: listening(p) for name, p in ports.items()} == dict.fromkeys(ports, False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in descendants_of(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        log.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_stops_dynamodb_local_too(tmp_path, sig):
    """Asked to stop while it is still starting (DynamoDB Local is up, the demo data or the API
    not yet), the runner still stops what it has started: DynamoDB Local runs in its own session,
    so nothing else would ever stop it."""
    if dynamodb_local.available() is not None and os.environ.get("CI") != "true":
        pytest.skip(f"DynamoDB Local cannot start here: {dynamodb_local.available()}")
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PORT": str(free_port()), "PYTHONUNBUFFERED": "1"})
    java: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not java and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            java = {p for p in descendants_of(proc.pid) if "DynamoDBLocal.jar" in cmdline(p)}
            time.sleep(0.05)
        assert java, "DynamoDB Local never started"
        assert "is running" not in log_path.read_text()
        proc.send_signal(sig)
        proc.wait(timeout=STOP_WITHIN_S)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in java) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {p: cmdline(p) for p in java if alive(p)} == {}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in java:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        log.close()
