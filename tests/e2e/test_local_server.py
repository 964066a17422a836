"""The local API server (local/serve.py) behaves as API Gateway in front of one Lambda container:
one request at a time per process, and a burst of connections is queued, never reset."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chalice import Chalice

from local import serve
from local.dynamodb_local import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, path: str, timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _in_process_server(app: Chalice):
    from chalice.config import Config

    port = free_port()
    server = serve.make_server(app, Config.create(chalice_app=app, app_name=app.app_name), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, name="local-serve", daemon=True)
    thread.start()
    return server, thread, port


def test_two_requests_at_once_are_served_one_after_the_other():
    """The second request enters the app only after the first has left it, as in one Lambda container.
    The first request waits (up to 5 s) for the second to come in beside it: without the lock the
    second comes in at once and the overlap is recorded."""
    app = Chalice(app_name="one-at-a-time")
    state = {"active": 0, "max_active": 0, "order": []}
    lock = threading.Lock()
    first_inside = threading.Event()
    second_arrived = threading.Event()

    def enter(name: str) -> None:
        with lock:
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
            state["order"].append(f"{name} in")

    def leave(name: str) -> None:
        with lock:
            state["active"] -= 1
            state["order"].append(f"{name} out")

    @app.route("/first")
    def first():
        enter("first")
        first_inside.set()
        second_arrived.wait(timeout=5)
        leave("first")
        return {"who": "first"}

    @app.route("/second")
    def second():
        enter("second")
        second_arrived.set()
        leave("second")
        return {"who": "second"}

    server, thread, port = _in_process_server(app)
    try:
        results: dict[str, tuple[int, bytes]] = {}
        a = threading.Thread(target=lambda: results.__setitem__("first", _get(port, "/first")))
        a.start()
        assert first_inside.wait(timeout=30)
        b = threading.Thread(target=lambda: results.__setitem__("second", _get(port, "/second")))
        b.start()
        a.join(timeout=60)
        b.join(timeout=60)
        assert results["first"][0] == 200 and json.loads(results["first"][1]) == {"who": "first"}
        assert results["second"][0] == 200 and json.loads(results["second"][1]) == {"who": "second"}
        assert state["max_active"] == 1, state
        assert state["order"] == ["first in", "first out", "second in", "second out"]
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def real_server(tmp_path):
    """`python -m local.serve` with the real app, as `make run` starts it (the routes used here
    need no database)."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "STAGE": "local",
           "SMS_GATEWAY": "console", "TABLE_NAME": "local-serve-test", "LOCAL_STATE_DIR": str(tmp_path),
           "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "DYNAMODB_ENDPOINT": "http://127.0.0.1:9"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "local.serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if _get(port, "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        stop_process(proc)
        log.close()


@pytest.mark.parametrize("path", ["/health", "/openapi.json"])
def test_a_hundred_requests_arriving_together_are_all_answered(real_server, path):
    """A hundred clients connect at the same instant and each sends its request: every one is
    answered 200, none is refused or reset (the server queues them, as API Gateway would). The
    contract (/openapi.json, 200 kB) keeps each request busy long enough for the rest to queue."""
    port = real_server
    clients = 100
    barrier = threading.Barrier(clients)
    answers: list[object] = [None] * clients

    def client(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            answers[i] = _get(port, path, timeout=120)[0]
        except Exception as exc:  # noqa: BLE001 - what the client met is the result
            answers[i] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    failures = [a for a in answers if a != 200]
    assert failures == [], f"{len(failures)} of {clients} failed, e.g. {failures[:5]}"
