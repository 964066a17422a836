"""The app with the portal blueprint, served by chalice's local HTTP server (the browser test starts it).

    .venv/bin/python -m tests.e2e.portal_app --port 8001 [--clock-file F] [--sms-outbox F]
    .venv/bin/python -m tests.e2e.portal_app --drain [--clock-file F] [--sms-outbox F]

It registers ``chalicelib.meta.portal.bp`` unless app.py already does (guarded on ``'/portal' in
app.routes``, so it keeps working once the lead wires the blueprint into app.py), then serves on
127.0.0.1 with ``chalice.local.create_local_server``. It runs as its own process, started and stopped
by process id, so the test process's ``app`` is never changed (the contract test compares it with
openapi.yaml).

Two test hooks, given on the command line and used only when given:
- ``--clock-file``: the server's clock runs the number of seconds in this file ahead of the wall
  clock, so a test moves time (SMS resend cooldown, a fresh TOTP step, access-token expiry) without
  sleeping. The test computes authenticator codes for the same moment.
- ``--sms-outbox``: SMS are appended to this file as JSON lines ``{"phone", "text"}`` instead of sent.

``--drain`` serves nothing: it runs the event outbox's consumers once over what is due (with ``--snapshot``,
first the scheduled snapshot of the clinics' schedules that analytics takes every 6 hours), as the table's
stream consumer does in AWS and the local runner in ``make run``, with the same clock and SMS outbox, prints
what it handled as JSON and exits. The browser test calls it when a journey needs the follow-ups (analytics
counters, the payment link's SMS, a refund sent to Stripe), so it decides when they happen.
"""
from __future__ import annotations

import argparse
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional


class FileOffsetClock:
    """Wall clock plus an offset (seconds) the test writes to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        try:
            return float(self.path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0.0

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset())


class FileOutbox:
    """An SMS gateway (``send(phone, text)``) that appends to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phone": phone, "text": text}, ensure_ascii=False) + "\n")


def portal_app() -> Any:
    """``app`` from app.py with the portal blueprint registered exactly once."""
    from app import app
    from chalicelib.meta import portal

    if "/portal" not in app.routes:
        app.register_blueprint(portal.bp)
    return app


def make_server(host: str, port: int, clock_file: Optional[Path] = None, sms_outbox: Optional[Path] = None) -> Any:
    from chalice.config import Config
    from chalice.local import create_local_server

    from chalicelib import bootstrap
    from chalicelib.core import clock

    if clock_file is not None:
        clock.set_clock(FileOffsetClock(clock_file))
    if sms_outbox is not None:
        bootstrap.provide("sms", FileOutbox(sms_outbox))  # what the services it builds send through
    app = portal_app()
    return create_local_server(app, Config.create(chalice_stage="local", app_name=app.app_name), host, port)


def drain(clock_file: Optional[Path] = None, sms_outbox: Optional[Path] = None,
          snapshot: bool = False) -> dict[str, Any]:
    from chalicelib import bootstrap
    from chalicelib.core import clock

    if clock_file is not None:
        clock.set_clock(FileOffsetClock(clock_file))
    if sms_outbox is not None:
        bootstrap.provide("sms", FileOutbox(sms_outbox))
    total: dict[str, Any] = {"done": 0, "retried": 0, "dead": 0, "kinds": []}
    if snapshot:  # the 6-hourly schedule snapshot of analytics (the fill rate's denominator)
        bootstrap.analytics().snapshot_all()
    for _ in range(100):  # drain() stops after its rounds; go on while it still makes progress
        result = bootstrap.outbox().drain()
        total["done"] += result.done
        total["retried"] += result.retried
        total["dead"] += result.dead
        total["kinds"] += result.kinds
        if not result.done:
            break
    return total


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--clock-file", type=Path)
    parser.add_argument("--sms-outbox", type=Path)
    parser.add_argument("--drain", action="store_true", help="run the outbox consumers once and exit")
    parser.add_argument("--snapshot", action="store_true", help="with --drain: first analytics' schedule snapshot")
    args = parser.parse_args(argv)
    if args.drain:
        # the last line of the output (the handlers' logs come before it)
        print("DRAINED " + json.dumps(drain(args.clock_file, args.sms_outbox, args.snapshot)))
        return
    server = make_server(args.host, args.port, args.clock_file, args.sms_outbox)
    server.serve_forever()


if __name__ == "__main__":
    main()
