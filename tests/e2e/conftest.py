"""End-to-end fixtures: Amazon's DynamoDB Local and the app served by ``chalice local``
over real HTTP, with the SMS the console gateway prints read back from its stderr.

Both processes are started here and stopped by their process id at teardown, with a local
Stripe-compatible server for Connect (local.stripe_fake, a thread of this process).

``clinic_world`` builds, over real HTTP against that server, what the fuzzer needs to reach the
clinic services with valid requests: a clinic administrator, a doctor and a platform
administrator, each enrolled in an authenticator app (so their sessions are TOTP-level), an
active clinic with a branch, a service, a room and the doctor's weekly hours, and a patient with
two bookings of real free slots (booked over HTTP like the app does) plus three more free slots.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
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

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers or {})
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

    def sign_up(self, phone: str, password: str = "correct horse battery", role: str = "patient") -> dict[str, Any]:
        """Sign someone up over HTTP with the code from the console; returns the token pair."""
        already = len(self.sms())
        status, challenge = self.request("POST", "/auth/signup", {
            "phone": phone, "password": password, "first_name": "Fuzz", "last_name": role.replace("_", " ").title(),
            "birth_date": "1990-04-12", "consent": {"version": "2026-11", "accepted": True}, "language": "en",
            "role": role,
        })
        assert status == 202, challenge
        code = self.wait_for_code(phone, already)
        status, tokens = self.request("POST", "/auth/signup/verify",
                                      {"challenge_id": challenge["challenge_id"], "code": code})
        assert status == 201, tokens
        return tokens

    def ok(self, method: str, path: str, body: Any = None, token: Optional[str] = None, status: int = 200,
           headers: Optional[dict[str, str]] = None) -> Any:
        got, answer = self.request(method, path, body, token, headers)
        assert got == status, (method, path, got, answer)
        return answer

    def staff(self, phone: str, role: str) -> dict[str, Any]:
        """A staff account whose session is TOTP-level: signed up, stepped up with the next SMS
        code, authenticator enrolled and confirmed (which upgrades the session in place)."""
        import pyotp

        token = self.sign_up(phone, role=role)["access_token"]
        user_id = self.ok("GET", "/me", token=token)["user_id"]
        already = len(self.sms())
        challenge = self.ok("POST", "/me/step-up", {}, token, 202)
        code = self.wait_for_code(phone, already)
        self.ok("POST", "/me/step-up/verify", {"challenge_id": challenge["challenge_id"], "code": code}, token)
        secret = self.ok("POST", "/me/totp", {}, token, 201)["secret"]
        self.ok("POST", "/me/totp/confirm", {"code": pyotp.TOTP(secret).now()}, token)
        return {"token": token, "user_id": user_id, "phone": phone, "totp": secret}

    def set_role(self, phone: str, role: str) -> None:
        """The operator command (no HTTP route makes platform administrators), on the server's table."""
        done = subprocess.run([sys.executable, "-m", "local.admin", "set-role", phone, role], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        from local.dynamodb_local import stop_process

        stop_process(self.process)


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
    from local.stripe_fake import FakeStripe

    stripe = FakeStripe(webhook_url=f"http://127.0.0.1:{port}/webhooks/stripe", webhook_secret="whsec_fuzz")
    stripe_url = stripe.start()
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
        "EMAIL_GATEWAY": "console",
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_SECRET_KEY": "sk_test_fuzz",
        "STRIPE_WEBHOOK_SECRET": "whsec_fuzz",
        # The fixtures send several SMS to one phone within seconds (sign-up, then step-up before
        # enrolling the authenticator app), and the fuzzer sends hundreds of SMS-sending requests
        # from one client. With the production limits (60 s between SMS to a phone, 5 per phone
        # and 20 per client an hour) the fixtures would wait out the cooldown and the fuzzer would
        # soon meet only 429. The limits themselves are tested in tests/unit and
        # tests/integration; here they are relaxed so the operations behind them get exercised.
        "SMS_RESEND_COOLDOWN_S": "0",
        "SMS_PER_PHONE_PER_HOUR": "1000",
        "SMS_PER_CLIENT_PER_HOUR": "10000",
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
        stripe.stop()


CLINIC = {
    "legal_name": "ООО «Клиника Фазз»", "display_name": {"ru": "Фазз", "en": "Fuzz"}, "tax_id": "3906123456",
    "country": "RU", "currency": "RUB",
    "contacts": {"phone": "+74012123456", "email": "info@fuzz.example", "public": ["phone", "email"]},
}
BRANCH = {"name": {"ru": "Центр", "en": "Centre"}, "address": "ул. Ленина, 1", "city": "Калининград",
          "time_zone": "Europe/Kaliningrad", "opening_hours": {"mon": [{"start": "08:00", "end": "20:00"}]}}
SERVICE = {"name": {"ru": "Консультация кардиолога", "en": "Cardiologist visit"}, "duration_minutes": 30,
           "price": {"amount": 250000, "currency": "RUB"}, "modality": "in_person", "specialty": "cardiologist"}
DOCTOR_PROFILE = {"specialties": ["cardiologist"], "category": "highest", "years_of_experience": 12,
                  "languages": ["ru", "en"], "bio": {"ru": "Кардиолог.", "en": "Cardiologist."}, "takes_duty": True}


@pytest.fixture(scope="session")
def clinic_world(live_server: LiveServer) -> dict[str, Any]:
    """An active clinic with a branch, service, room and a doctor with weekly hours; its
    administrator, the doctor and a platform administrator, all TOTP-level sessions (the fuzzer's:
    it may remove the doctor or change the clinic)."""
    return build_clinic_world(live_server, "+791600000")


def build_clinic_world(s: LiveServer, phones: str) -> dict[str, Any]:
    """The world above, its people on numbers ``<phones>11``, ``12``, ``13`` and ``21``."""
    admin = s.staff(f"{phones}11", "clinic_admin")
    doctor = s.staff(f"{phones}12", "doctor")
    platform = s.staff(f"{phones}13", "clinic_admin")
    s.set_role(platform["phone"], "platform_admin")
    assert s.ok("GET", "/me", token=platform["token"])["role"] == "platform_admin"

    clinic = s.ok("POST", "/clinics", CLINIC, admin["token"], 201)
    cid = clinic["clinic_id"]
    branch = s.ok("POST", f"/clinics/{cid}/branches", BRANCH, admin["token"], 201)
    already = len(s.sms())
    invitation = s.ok("POST", f"/clinics/{cid}/invitations", {"role": "doctor", "phone": doctor["phone"]},
                      admin["token"], 201)
    code = s.wait_for_code(doctor["phone"], already)
    s.ok("POST", "/invitations/accept", {"invitation_id": invitation["invitation_id"], "code": code}, doctor["token"])
    s.ok("PUT", "/me/doctor-profile", DOCTOR_PROFILE, doctor["token"])
    service = s.ok("POST", f"/clinics/{cid}/services", SERVICE, admin["token"], 201)
    s.ok("POST", f"/clinics/{cid}/branches/{branch['branch_id']}/resources",
         {"kind": "ecg", "name": "ECG room", "capacity": 1}, admin["token"], 201)
    s.ok("POST", f"/clinics/{cid}/doctors/{doctor['user_id']}/templates",
         {"branch_id": branch["branch_id"], "modality": "in_person", "weekday": "mon", "start": "09:00",
          "end": "13:00"}, admin["token"], 201)
    s.ok("POST", f"/clinics/{cid}/submit", None, admin["token"])
    s.ok("POST", f"/clinics/{cid}/verify", None, platform["token"])
    s.ok("POST", f"/clinics/{cid}/activate", None, admin["token"])
    assert s.ok("GET", f"/catalog/clinics/{cid}")["status"] == "active"
    listed = s.ok("GET", f"/catalog/doctors?specialty=cardiologist&clinic_id={cid}")["items"]
    assert [d["doctor_id"] for d in listed] == [doctor["user_id"]], listed

    # A patient books two real slots over HTTP, the way the app does: free slots first, then
    # POST /bookings with an Idempotency-Key. The fuzzer gets the ids (one booking to read, move
    # and mark, one to cancel) and further free slots to book, move to and invite to.
    patient = s.sign_up(f"{phones}21")["access_token"]
    patient_id = s.ok("GET", "/me", token=patient)["user_id"]
    today = date.today()
    query = urllib.parse.urlencode({"clinic_id": cid, "service_id": service["service_id"],
                                    "date_from": (today - timedelta(days=1)).isoformat(),
                                    "date_to": (today + timedelta(days=22)).isoformat()})
    slots = s.ok("GET", f"/catalog/doctors/{doctor['user_id']}/slots?{query}")["items"]
    assert len(slots) >= 5, slots  # Monday mornings 09:00-13:00 in Kaliningrad, 30-minute visits
    bookings = []
    for i, slot in enumerate(slots[:2]):
        req = {"clinic_id": cid, "service_id": service["service_id"], "doctor_id": doctor["user_id"],
               "branch_id": slot["branch_id"], "start": slot["start"]}
        booked = s.ok("POST", "/bookings", req, patient, 201, headers={"Idempotency-Key": f"fixture-booking-{i}"})
        assert booked["status"] == "confirmed" and booked["start"]["utc"] == slot["start"], booked
        bookings.append(booked["booking_id"])
    feed = s.ok("GET", "/me/calendar-feed", token=doctor["token"])["url"]
    return {"admin": admin, "doctor": doctor, "platform": platform, "clinic_id": cid,
            "branch_id": branch["branch_id"], "service_id": service["service_id"],
            "patient": {"token": patient, "user_id": patient_id}, "booking_id": bookings[0],
            "cancel_booking_id": bookings[1], "free_slots": [slot["start"] for slot in slots[2:5]],
            "specialty": DOCTOR_PROFILE["specialties"][0], "calendar_token": feed.rsplit("/", 1)[1]}
