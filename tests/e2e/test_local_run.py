"""`make run` as a newcomer meets it: it starts the whole backend, answers, and stops cleanly on SIGTERM,
taking every process it started with it (it used to hang in its signal handler and leave them running)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local.dynamodb_local import free_port

ROOT = Path(__file__).resolve().parents[2]


def children_of(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_local_backend_starts_answers_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PORT": str(port)})
    try:
        deadline = time.monotonic() + 180
        while "is running" not in (tmp_path / "run.log").read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(1)
        assert "is running" in (tmp_path / "run.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        started = children_of(proc.pid)
        assert len(started) >= 2  # DynamoDB Local, the moto server, the API server
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 15
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [p for p in started if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
