"""``make run``: the whole backend on this machine, nothing else to start.

- DynamoDB: DYNAMODB_ENDPOINT if set (e.g. AWS); else DynamoDB Local keeping its
  data in .local/dynamodb; else, where Java is missing, moto (in memory) - said so.
- Other AWS services (SNS, S3, SQS, ...): moto server on 127.0.0.1.
- SMS: printed to this console, marked LOCAL ONLY.
- The API: ``chalice local`` on 127.0.0.1:8000; scheduled functions and queue
  consumers fired by this process, as Lambda would (notifications go on a moto SQS queue with
  its dead-letter queue, and the scheduler feeds them to ``deliver_notifications``).
SIGTERM or SIGINT (Ctrl-C), from the first line on, stops every child by its pid (the API server,
DynamoDB Local, the moto server, the scheduler) and leaves nothing listening.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))


class Stopped(Exception):
    """SIGTERM or SIGINT arrived while starting: stop what has started and leave."""


def _wait_http(url: str, stopping: threading.Event, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping.is_set():
            raise Stopped
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            stopping.wait(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def main() -> int:
    # SIGTERM and SIGINT only raise a flag, from the first line on: stopping children means waiting
    # for them, and a wait inside a signal handler can deadlock on the lock the interrupted wait
    # holds. The main thread checks the flag between start-up steps and in its loop, and stops every
    # child it started (DynamoDB Local runs in a session of its own: nothing else would stop it).
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())

    def check() -> None:
        if stopping.is_set():
            raise Stopped

    children: list[subprocess.Popen] = []
    stoppers: list = []
    try:
        _run(env=dict(os.environ), children=children, stoppers=stoppers, stopping=stopping, check=check)
    except Stopped:
        pass
    finally:
        for s in reversed(stoppers):  # the scheduler first, then the API, DynamoDB Local, moto
            try:
                s()
            except Exception as exc:
                print(f"stopping: {type(exc).__name__}: {exc}", file=sys.stderr)
    print("Clinic backend stopped.", flush=True)
    return 0


def _notifications_queue(endpoint: str, region: str) -> str:
    """The notifications queue on the moto server, with its dead-letter queue after five receives (as the stack
    makes it); the scheduler feeds it to ``deliver_notifications``."""
    import boto3

    from chalicelib.notify.jobs import NOTIFICATIONS_QUEUE

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region, aws_access_key_id="local",
                       aws_secret_access_key="local")
    dlq = sqs.create_queue(QueueName=f"{NOTIFICATIONS_QUEUE}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE, Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]


def _run(env: dict, children: list, stoppers: list, stopping: threading.Event, check) -> None:
    from local import dynamodb_local

    env.update({
        "STAGE": "local", "SMS_GATEWAY": "console", "TABLE_NAME": env.get("TABLE_NAME", "clinic-backend"),
        "LOCAL_STATE_DIR": str(STATE / "state"), "AWS_REGION": env.get("AWS_REGION", "eu-central-1"),
        "AWS_DEFAULT_REGION": env.get("AWS_REGION", "eu-central-1"),
    })

    from moto.server import ThreadedMotoServer

    moto_port = dynamodb_local.free_port()
    moto = ThreadedMotoServer(ip_address=HOST, port=moto_port, verbose=False)
    moto.start()
    stoppers.append(moto.stop)
    env.setdefault("AWS_ENDPOINT", f"http://{HOST}:{moto_port}")
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    if not env.get("NOTIFICATIONS_QUEUE_URL"):  # pushes and SMS go through the queue and its consumer, as in AWS
        env["NOTIFICATIONS_QUEUE_URL"] = _notifications_queue(env["AWS_ENDPOINT"], env["AWS_REGION"])
    check()

    if not env.get("STRIPE_API_BASE"):  # the local Stripe server: payouts of the Berlin demo clinic
        from local.stripe_fake import FakeStripe

        fake_stripe = FakeStripe(webhook_url=f"http://{HOST}:{PORT}/webhooks/stripe", webhook_secret="whsec_local")
        env.update({"STRIPE_API_BASE": fake_stripe.start(), "STRIPE_SECRET_KEY": "sk_test_local",
                    "STRIPE_WEBHOOK_SECRET": "whsec_local"})
        stoppers.append(fake_stripe.stop)

    if env.get("DYNAMODB_ENDPOINT"):
        engine = f"the configured endpoint {env['DYNAMODB_ENDPOINT']}"
    else:
        why = dynamodb_local.available()
        if why is None:
            server = dynamodb_local.start(data_dir=STATE / "dynamodb")
            stoppers.append(server.stop)
            env["DYNAMODB_ENDPOINT"] = server.endpoint
            engine = f"DynamoDB Local at {server.endpoint} (data kept in .local/dynamodb)"
        else:
            env["DYNAMODB_ENDPOINT"] = env["AWS_ENDPOINT"]
            engine = f"moto's DynamoDB emulation, in memory only, because {why}"
    check()

    os.environ.update(env)  # this process seeds and runs the scheduler against the same services
    from chalicelib.core import aws
    from chalicelib.core.settings import get_settings
    from chalicelib.core.table import ensure_table
    from local.seed import DEMO_ADMIN, DEMO_DOCTOR, DEMO_PATIENT, DEMO_PLATFORM, seed_once

    ensure_table(aws.client("dynamodb"), get_settings().table_name)
    check()
    seeded = seed_once()
    totp_file = STATE / "state" / "demo-totp.json"
    if seeded:
        totp_file.parent.mkdir(parents=True, exist_ok=True)
        totp_file.write_text(json.dumps(seeded["totp"]))
        os.chmod(totp_file, 0o600)
    totp = json.loads(totp_file.read_text()) if totp_file.exists() else {}
    check()

    def staff_line(spec: dict) -> str:
        secret = totp.get(spec["phone"], "?")
        return f"{spec['phone']} / {spec['password']}   authenticator secret {secret}"

    # chalice's local server, one request at a time (see local/serve.py for why). Its own session:
    # a Ctrl-C in the terminal reaches this process only, which stops the server by its id.
    chalice = subprocess.Popen(
        [sys.executable, "-m", "local.serve", "--host", HOST, "--port", str(PORT), "--stage", "local"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    children.append(chalice)
    stoppers.append(lambda: dynamodb_local.stop_process(chalice))

    _wait_http(f"http://{HOST}:{PORT}/health", stopping)
    from app import app
    from chalicelib import bootstrap
    from local.scheduler import Scheduler, describe

    scheduler = Scheduler(app, sqs_client=aws.client("sqs"), events=lambda: bootstrap.outbox().drain())
    scheduler.start()
    stoppers.append(scheduler.stop)
    jobs = describe(app) or ["(none declared yet)"]
    stripe_base = env.get("STRIPE_API_BASE", "")
    print(f"""
================================================================================
 Clinic backend is running (local stage)
   API       http://{HOST}:{PORT}/
   Docs      http://{HOST}:{PORT}/docs     (try every call from the page)
   Contract  http://{HOST}:{PORT}/openapi.yaml
   DynamoDB  {engine}
   Other AWS moto server at {env['AWS_ENDPOINT']}
   Jobs      {'; '.join(jobs)}
 Demo logins ({'created now' if seeded else 'already there'}; the SMS code appears below, LOCAL ONLY):
   patient        {DEMO_PATIENT['phone']} / {DEMO_PATIENT['password']}   (second factor: SMS code below)
   doctor         {staff_line(DEMO_DOCTOR)}
   clinic admin   {staff_line(DEMO_ADMIN)}
   platform admin {staff_line(DEMO_PLATFORM)}
   staff sign in with an authenticator code; read one with:
     .venv/bin/python -c "import pyotp; print(pyotp.TOTP('<secret>').now())"
   Portal    http://{HOST}:{PORT}/portal
 Payments (Berlin demo clinic "Praxis Mitte": payouts connected, "Cardiologist consultation, prepaid" on Saturdays)
   book it as the patient: the booking is held; POST /bookings/<id>/payment gives the PaymentSheet secrets;
   pay it with the test card (4242 4242 4242 4242, i.e. PaymentMethod pm_card_visa; pm_card_chargeDeclined fails):
     curl -s -u sk_test_local: -X POST {stripe_base}/v1/payment_intents/<pi_id>/confirm -d payment_method=pm_card_visa
   or send a payment link from the portal and open it (the page has a Pay button);
   Stripe's events go to http://{HOST}:{PORT}/webhooks/stripe, signed; list and replay one:
     curl -s {stripe_base}/_local/events ; curl -s -X POST {stripe_base}/_local/replay/<evt_id>
 Try:
   curl -s -X POST http://{HOST}:{PORT}/auth/login -H 'Content-Type: application/json' \\
        -d '{{"phone":"{DEMO_PATIENT['phone']}","password":"{DEMO_PATIENT['password']}"}}'
 Stop with Ctrl-C.
================================================================================
""", flush=True)
    while not stopping.is_set() and chalice.poll() is None:
        stopping.wait(0.5)


if __name__ == "__main__":
    sys.exit(main())
