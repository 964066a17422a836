"""Clients generated from openapi.yaml work: app developers generate theirs from the contract.

The Python client (openapi-python-client, pinned in requirements-dev.txt) is generated here into a
temporary folder and drives a whole patient journey against `chalice local` (the live_server
fixture: started on 127.0.0.1 by tests/e2e/conftest.py, stopped by its process id): sign up,
verify, log in with the second factor, find a slot, book, read the booking, and meet a 409 problem
on the taken slot whose `code` the client reads. The TypeScript types (openapi-typescript, npm, in
tools/npm) are generated too. Both generators must not warn: a warning is an operation or a
response the client silently lacks (before, every error response of every operation was dropped)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
TS_GENERATOR = ROOT / "tools" / "npm" / "node_modules" / ".bin" / "openapi-typescript"


def _missing(tool: Path, how: str) -> None:
    if not tool.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing: {how}")
        pytest.skip(f"{tool} is missing ({how})")


@pytest.fixture(scope="module")
def clinic_client(tmp_path_factory) -> Any:
    _missing(GENERATOR, "pip install -r requirements-dev.txt")
    out = tmp_path_factory.mktemp("generated-python-client")
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(ROOT / "openapi.yaml"), "--config",
         str(ROOT / "tools" / "openapi-python-client.yaml"), "--meta", "none", "--output-path",
         str(out / "clinic_client")],
        cwd=out, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "warning" not in said.lower(), said[:5000]
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("clinic_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "clinic_client" or m.startswith("clinic_client.")]:
            del sys.modules[name]


def test_the_python_client_reads_every_documented_problem(clinic_client):
    """Every error response of every operation is in the generated client: an operation's parser
    turns each documented 4xx status into a Problem (it used to omit them all)."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    booking = importlib.import_module("clinic_client.api.booking.create_booking")
    statuses = sorted(int(s) for s in spec["paths"]["/bookings"]["post"]["responses"] if s.startswith("4"))
    assert 409 in statuses and 422 in statuses
    import httpx

    responses = spec["paths"]["/bookings"]["post"]["responses"]
    client = clinic_client.Client(base_url="http://127.0.0.1:9")
    for status in statuses:
        if responses[str(status)] == {"$ref": "#/components/responses/Throttled"}:
            # API Gateway's own throttling answer: {"message": ...}, read as a GatewayMessage.
            parsed = booking._parse_response(client=client,
                                             response=httpx.Response(status, json={"message": "Too Many Requests"}))
            assert isinstance(parsed, clinic_client.models.GatewayMessage), (status, parsed)
            assert parsed.message == "Too Many Requests"
            continue
        body = {"type": "https://docs.clinic.example/problems/x", "title": "t", "status": status, "code": "some_code"}
        parsed = booking._parse_response(client=client, response=httpx.Response(status, json=body))
        assert isinstance(parsed, clinic_client.models.Problem), (status, parsed)
        assert parsed.code == "some_code"


@pytest.fixture(scope="module")
def own_world(live_server):
    """A clinic of this test's own: the fuzzer's (the session's clinic_world) may have lost its doctor."""
    from tests.e2e.conftest import build_clinic_world

    return build_clinic_world(live_server, "+791600010")


def test_a_whole_journey_with_the_generated_python_client(clinic_client, live_server, own_world):
    clinic_world = own_world
    from clinic_client import AuthenticatedClient, Client
    from clinic_client.api.auth import log_in, sign_up, verify_log_in, verify_sign_up
    from clinic_client.api.booking import create_booking, free_slots, get_booking
    from clinic_client.api.me import get_me
    from clinic_client.models import BookingIn, Consent, LoginRequest, Problem, SignUpRequest, VerifyRequest

    s = live_server
    phone, password = "+79160000031", "a long passphrase for the client"
    anonymous = Client(base_url=s.base_url, raise_on_unexpected_status=True, timeout=30)

    # Sign up and verify with the SMS code.
    already = len(s.sms())
    r = sign_up.sync_detailed(client=anonymous, body=SignUpRequest(
        phone=phone, password=password, first_name="Клиент", last_name="Генерированный",
        birth_date=date(1991, 5, 17), consent=Consent(version="2026-11", accepted=True)))
    assert r.status_code == 202, r.content
    r = verify_sign_up.sync_detailed(client=anonymous, body=VerifyRequest(
        challenge_id=r.parsed.challenge_id, code=s.wait_for_code(phone, already)))
    assert r.status_code == 201, r.content

    # Log in: password, then the second factor (an SMS code).
    already = len(s.sms())
    r = log_in.sync_detailed(client=anonymous, body=LoginRequest(phone=phone, password=password))
    assert r.status_code == 202, r.content
    assert r.parsed.second_factor.value == "sms"
    r = verify_log_in.sync_detailed(client=anonymous, body=VerifyRequest(
        challenge_id=r.parsed.challenge_id, code=s.wait_for_code(phone, already)))
    assert r.status_code == 200, r.content
    patient = AuthenticatedClient(base_url=s.base_url, token=r.parsed.access_token, timeout=30)
    me = get_me.sync_detailed(client=patient)
    assert me.status_code == 200 and me.parsed.phone == phone

    # Find a slot: weeks after the fixture's own (the fuzzer books those).
    today = date.today()
    r = free_slots.sync_detailed(clinic_world["doctor"]["user_id"], client=anonymous,
                                 clinic_id=clinic_world["clinic_id"], service_id=clinic_world["service_id"],
                                 date_from=today + timedelta(days=29), date_to=today + timedelta(days=50))
    assert r.status_code == 200, r.content
    assert r.parsed.items, "no free slot"
    slot = r.parsed.items[0]
    start = slot.start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Book it, and read the booking back.
    wanted = BookingIn(clinic_id=clinic_world["clinic_id"], service_id=clinic_world["service_id"],
                       doctor_id=clinic_world["doctor"]["user_id"], branch_id=slot.branch_id, start=start)
    r = create_booking.sync_detailed(client=patient, body=wanted, idempotency_key=str(uuid.uuid4()))
    assert r.status_code == 201, r.content
    booking = r.parsed
    assert booking.status.value == "confirmed" and booking.patient_id == me.parsed.user_id
    r = get_booking.sync_detailed(booking.booking_id, client=patient)
    assert r.status_code == 200, r.content
    assert r.parsed.booking_id == booking.booking_id
    assert r.parsed.start.utc.astimezone(timezone.utc) == slot.start.astimezone(timezone.utc)

    # The same slot again is taken: a 409 problem the client parses, with its stable code.
    r = create_booking.sync_detailed(client=patient, body=wanted, idempotency_key=str(uuid.uuid4()))
    assert r.status_code == 409, r.content
    assert isinstance(r.parsed, Problem), r.parsed
    assert r.parsed.status == 409 and r.parsed.code == "slot_taken", r.content
    assert r.parsed.title


def test_openapi_typescript_generates_the_types_without_a_warning(tmp_path):
    _missing(TS_GENERATOR, "make tools (npm ci in tools/npm)")
    out = tmp_path / "api.d.ts"
    done = subprocess.run([str(TS_GENERATOR), str(ROOT / "openapi.yaml"), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    lines = [line for line in said.splitlines() if line.strip()]
    # It prints its version and the file it wrote, and nothing else unless something is wrong.
    assert [line for line in lines if "openapi-typescript" not in line and "→" not in line] == [], said
    types = out.read_text()
    assert '"/bookings": {' in types and "Problem: {" in types and "code: string;" in types
