"""End-to-end fixtures: Amazon's DynamoDB Local and the app served by ``chalice local``
over real HTTP, with the SMS the console gateway prints read back from its stderr.

Both processes are started here and stopped by their process id at teardown.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from local import dynamodb_local

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
SMS_LINE = re.compile(r"==== LOCAL ONLY - SMS NOT SENT ==== to (\S+): (.*)")


def mask(phone: str) -> str:
    """How the console SMS gateway prints a phone (core.sms.ConsoleSmsGateway)."""
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:]


@dataclass
class LiveServer:
    process: subprocess.Popen
    base_url: str
    env: dict[str, str]
    log_path: Path
    stderr_lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in iter(self.process.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.stderr_lines.append(line)

    def sms(self) -> list[tuple[str, str]]:
        """(masked phone, text) of every SMS the server printed so far."""
        with self._lock:
            lines = list(self.stderr_lines)
        return [(m.group(1), m.group(2)) for m in map(SMS_LINE.search, lines) if m]

    def wait_for_code(self, phone: str, already: int, timeout: float = 10.0) -> str:
        """The 6-digit code of the first SMS to ``phone`` after the first ``already`` SMS."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for to, text in self.sms()[already:]:
                found = re.search(r"\b(\d{6})\b", text)
                if to == mask(phone) and found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no SMS code for {mask(phone)} within {timeout} s; stderr tail:\n"
                             + "\n".join(self.stderr_lines[-20:]))

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def sign_up(self, phone: str, password: str = "correct horse battery") -> dict[str, Any]:
        """Sign a patient up over HTTP with the code from the console; returns the token pair."""
        already = len(self.sms())
        status, challenge = self.request("POST", "/auth/signup", {
            "phone": phone, "password": password, "first_name": "Fuzz", "last_name": "Patient",
            "birth_date": "1990-04-12", "consent": {"version": "2026-11", "accepted": True}, "language": "en",
        })
        assert status == 202, challenge
        code = self.wait_for_code(phone, already)
        status, tokens = self.request("POST", "/auth/signup/verify",
                                      {"challenge_id": challenge["challenge_id"], "code": code})
        assert status == 201, tokens
        return tokens

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def dynamodb_local_server() -> Iterator[dynamodb_local.DynamoDBLocal]:
    why = dynamodb_local.available()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"DynamoDB Local is required in CI: {why}")
        pytest.skip(f"DynamoDB Local unavailable outside CI: {why}")
    server = dynamodb_local.start()
    yield server
    server.stop()


def _wait_for_health(server: LiveServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("chalice local exited:\n" + "\n".join(server.stderr_lines[-40:]))
        try:
            with urllib.request.urlopen(server.base_url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("chalice local did not answer /health within 60 s:\n" + "\n".join(server.stderr_lines[-40:]))


@pytest.fixture(scope="session")
def live_server(dynamodb_local_server, tmp_path_factory) -> Iterator[LiveServer]:
    import boto3

    from chalicelib.core.ids import new_id
    from chalicelib.core.table import ensure_table

    table = f"e2e-{new_id().lower()}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}
    ddb = boto3.client("dynamodb", endpoint_url=dynamodb_local_server.endpoint, region_name=REGION, **creds)
    ensure_table(ddb, table)

    state = tmp_path_factory.mktemp("local-state")
    port = dynamodb_local.free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "STAGE": "local",
        "SMS_GATEWAY": "console",
        "TABLE_NAME": table,
        "DYNAMODB_ENDPOINT": dynamodb_local_server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "LOCAL_STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    chalice = str(Path(sys.executable).with_name("chalice"))
    log_path = Path(tempfile.mkstemp(prefix="chalice-local-", suffix=".log")[1])
    # --no-autoreload: one process (stopped by its id) that does not restart while the fuzzer runs.
    proc = subprocess.Popen(
        [chalice, "local", "--host", "127.0.0.1", "--port", str(port), "--stage", "local", "--no-autoreload"],
        cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.PIPE, start_new_session=True,
    )
    server = LiveServer(process=proc, base_url=f"http://127.0.0.1:{port}", env=env, log_path=log_path)
    reader = threading.Thread(target=server._read_stderr, name="chalice-stderr", daemon=True)
    reader.start()
    try:
        _wait_for_health(server)
        yield server
    finally:
        server.stop()
        reader.join(timeout=5)
