"""A clinic administrator onboards a clinic through the web portal, in a real browser.

Started here and stopped at teardown (by process id or server shutdown): Amazon's DynamoDB Local
(the session fixture of tests/e2e/conftest.py), the local Stripe Connect server
(local/stripe_fake.py, in this process), and the app with the portal blueprint
(tests/e2e/portal_app.py, its own process on 127.0.0.1). Headless Debian Chromium is driven with
Playwright's sync API.

The server's clock is the wall clock plus an offset this test moves (PortalServer.advance): the
SMS resend cooldown, a fresh authenticator time step and access-token expiry happen without
sleeping, and authenticator codes are computed with pyotp for the server's moment. SMS land in a
file outbox the test reads.

Screenshots of the main screens are written to docs/screenshots/ on every run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from local import dynamodb_local

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
REGION = "eu-central-1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WEBHOOK_SECRET = "whsec_portal_test"
PASSWORD = "correct horse battery"
ADMIN_PHONE = "+79115550101"
DOCTOR_PHONE = "+79115550202"


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {why}")
    pytest.skip(f"unavailable outside CI: {why}")


# ------------------------------------------------------------------ the server under test

class PortalServer:
    """The app (with the portal) in its own process, its clock offset and its SMS outbox."""

    def __init__(self, base_url: str, process: subprocess.Popen, clock_file: Path, outbox: Path,
                 log_path: Path, env: Optional[dict[str, str]] = None) -> None:
        self.base_url = base_url
        self.env = env or {}
        self.process = process
        self.clock_file = clock_file
        self.outbox = outbox
        self.log_path = log_path
        self.offset = 0.0

    # time
    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.clock_file.write_text(str(self.offset))

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)

    def totp(self, secret: str) -> str:
        import pyotp

        return pyotp.TOTP(secret).at(self.now())

    # SMS
    def sms(self) -> list[dict[str, str]]:
        if not self.outbox.exists():
            return []
        return [json.loads(line) for line in self.outbox.read_text(encoding="utf-8").splitlines() if line.strip()]

    def wait_sms(self, phone: str, already: int, timeout: float = 10.0) -> str:
        """The text of the first SMS to ``phone`` after the first ``already`` SMS."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.sms()[already:]:
                if m["phone"] == phone:
                    return m["text"]
            time.sleep(0.05)
        raise AssertionError(f"no SMS to {phone} within {timeout} s")

    def code(self, phone: str, already: int) -> str:
        found = re.search(r"\b(\d{6})\b", self.wait_sms(phone, already))
        assert found, "the SMS carries no 6-digit code"
        return found.group(1)

    # HTTP
    def api(self, method: str, path: str, body: Any = None, token: Optional[str] = None) -> tuple[int, Any]:
        import requests

        headers = {"Accept-Language": "en"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        resp = requests.request(method, self.base_url + path, json=body, headers=headers, timeout=30)
        return resp.status_code, (resp.json() if resp.content else None)

    def drain(self, snapshot: bool = False) -> dict[str, Any]:
        """Run the outbox's consumers over what is due now, in a process of its own with the server's table,
        clock and SMS outbox (tests/e2e/portal_app.py --drain): the follow-ups a stream consumer runs in AWS."""
        done = subprocess.run([sys.executable, "-m", "tests.e2e.portal_app", "--drain", "--clock-file",
                               str(self.clock_file), "--sms-outbox", str(self.outbox)]
                              + (["--snapshot"] if snapshot else []),
                              cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("DRAINED "))
        assert result["dead"] == 0, result
        return result

    def set_role(self, phone: str, role: str) -> None:
        """The operator command (no HTTP route makes platform administrators), on the server's table."""
        done = subprocess.run([sys.executable, "-m", "local.admin", "set-role", phone, role], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        from local.dynamodb_local import stop_process

        stop_process(self.process)


def _wait_until_up(server: PortalServer, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("the portal app exited:\n" + server.log_path.read_text()[-4000:])
        try:
            if requests.get(server.base_url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the portal app did not answer /health:\n" + server.log_path.read_text()[-4000:])


@pytest.fixture(scope="module")
def fake_stripe_server() -> Iterator[Any]:
    from local.stripe_fake import STRIPE_COUNTRIES, FakeStripe

    # Stripe does not serve Russia (the RU clinic's payouts would be 422); this test is about
    # the portal's screens, so the local Stripe lets its RU clinic onboard. TODO: a DE clinic.
    # the webhook URL is set once the app's port is known
    fake = FakeStripe(webhook_secret=WEBHOOK_SECRET, countries=STRIPE_COUNTRIES | {"RU"})
    fake.url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def portal(dynamodb_local_server, fake_stripe_server, tmp_path_factory) -> Iterator[PortalServer]:
    import boto3

    from chalicelib.core.ids import new_id
    from chalicelib.core.table import ensure_table

    table = f"portal-{new_id().lower()}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}
    ddb = boto3.client("dynamodb", endpoint_url=dynamodb_local_server.endpoint, region_name=REGION, **creds)
    ensure_table(ddb, table)

    work = tmp_path_factory.mktemp("portal")
    port = dynamodb_local.free_port()
    base_url = f"http://127.0.0.1:{port}"
    fake_stripe_server.webhook_url = base_url + "/webhooks/stripe"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRIPE_"))},
        "STAGE": "test", "TABLE_NAME": table, "DYNAMODB_ENDPOINT": dynamodb_local_server.endpoint,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "SMS_GATEWAY": "console", "EMAIL_GATEWAY": "console",  # SMS go to the outbox file (--sms-outbox)
        "STRIPE_API_BASE": fake_stripe_server.url, "STRIPE_SECRET_KEY": "sk_test_portal",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PUBLIC_BASE_URL": base_url, "PYTHONUNBUFFERED": "1",
    }
    clock_file, outbox, log_path = work / "clock", work / "sms.jsonl", work / "app.log"
    clock_file.write_text("0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.portal_app", "--host", "127.0.0.1", "--port", str(port),
         "--clock-file", str(clock_file), "--sms-outbox", str(outbox)],
        cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    server = PortalServer(base_url, proc, clock_file, outbox, log_path, env)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()
        ddb.delete_table(TableName=table)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Python Playwright is not installed (pip install -r requirements-dev.txt)")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        _missing(f"{CHROMIUM} is missing (make tools installs Debian's chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# ------------------------------------------------------------------ the static files

def test_the_app_serves_only_the_portal_files_with_a_strict_policy(portal):
    import requests

    r = requests.get(portal.base_url + "/portal", allow_redirects=False, timeout=10)
    assert r.status_code == 308 and r.headers["Location"] == "/portal/"

    r = requests.get(portal.base_url + "/portal/", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    html = r.text
    assert '<script src="app.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"\sstyle=|\son[a-z]+=", html), "no inline style or event handler attributes"

    for name, ctype in (("app.js", "text/javascript"), ("i18n.js", "text/javascript"), ("styles.css", "text/css"),
                        ("index.html", "text/html")):
        r = requests.get(f"{portal.base_url}/portal/{name}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(ctype), name
        assert r.headers["X-Frame-Options"] == "DENY"

    for name in ("portal.py", "..%2Fapp.py", ".env", "app.js.map", "README.md"):
        r = requests.get(f"{portal.base_url}/portal/{name}", timeout=10, headers={"Accept-Language": "en"})
        assert r.status_code == 404, name
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["code"] == "not_found"


# ------------------------------------------------------------------ the journey

def test_a_clinic_administrator_onboards_a_clinic_in_the_browser(portal, fake_stripe_server, browser):
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    api_calls: list[str] = []
    page.on("request", lambda req: api_calls.append(req.method + " " + req.url.replace(portal.base_url, "")))

    def screen(name: str):
        return page.locator(f'section[data-screen="{name}"]')

    def heading():
        return page.locator("section[data-screen]:not([hidden]) h1")

    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    status = page.locator("#status")

    try:
        # ---- the sign-in page, in Russian (the browser's language), and the language switch
        page.goto(portal.base_url + "/portal")
        expect(heading()).to_have_text("Вход для администраторов клиник")
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        expect(screen("signin").get_by_label("Телефон")).to_be_visible()
        # Every control of every screen has a label; every text exists in both languages.
        unlabelled = page.evaluate("""Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)""")
        assert unlabelled == []
        missing = page.evaluate("""(() => {
            const d = window.PORTAL_I18N, keys = new Set([...Object.keys(d.ru), ...Object.keys(d.en)]);
            document.querySelectorAll('[data-i18n]').forEach(e => keys.add(e.dataset.i18n));
            return [...keys].filter(k => !k.startsWith('verr.') && !(k in d.ru && k in d.en));
        })()""")
        assert missing == []
        shot("sign-in")
        page.get_by_role("button", name="English").click()
        expect(heading()).to_have_text("Sign in for clinic administrators")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
        expect(screen("signin").get_by_label("Password")).to_be_visible()
        page.get_by_role("button", name="Русский").click()
        expect(heading()).to_have_text("Вход для администраторов клиник")
        expect(page).to_have_title("Вход для администраторов клиник — Портал клиники")
        page.get_by_role("button", name="English").click()

        # ---- sign up as a clinic administrator and confirm the phone with the SMS code
        screen("signin").get_by_role("link", name="Create an administrator account").click()
        expect(heading()).to_have_text("Clinic administrator account")
        su = screen("signup")
        su.get_by_label("First name").fill("Anna")
        su.get_by_label("Last name").fill("Petrova")
        su.get_by_label("Date of birth").fill("1985-03-14")
        su.get_by_label("Phone").fill("+7 911 555-01-01")
        su.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
        su.get_by_label("I consent to the processing of my personal data").check()
        sent = len(portal.sms())
        su.get_by_role("button", name="Get a code by SMS").click()
        expect(status).to_have_text("We sent a code to your phone.")
        su.get_by_label("Code from the SMS").fill(portal.code(ADMIN_PHONE, sent))
        su.get_by_role("button", name="Confirm").click()

        # ---- enrol the authenticator app: step up with an SMS code, add the key, confirm, keep the codes
        expect(heading()).to_have_text("Connect an authenticator app")
        en = screen("enrol")
        portal.advance(61)  # one SMS a minute per phone: the sign-up code was just sent
        sent = len(portal.sms())
        en.get_by_role("button", name="Send the code by SMS").click()
        en.get_by_label("Code from the SMS").fill(portal.code(ADMIN_PHONE, sent))
        en.get_by_role("button", name="Confirm").click()
        expect(en.get_by_role("heading", name="Add the key to your app")).to_be_visible()
        secret = page.locator("#totp-secret").get_attribute("data-secret")
        assert secret and re.fullmatch(r"[A-Z2-7]{16,}", secret)
        expect(page.locator("#totp-secret")).to_have_text(re.compile(r"^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$"))
        expect(en.get_by_role("link", name="Open in your authenticator app")).to_have_attribute(
            "href", re.compile(r"^otpauth://totp/.*secret=" + secret))
        shot("authenticator")
        en.get_by_label("Code from the app").fill(portal.totp(secret))
        en.get_by_role("button", name="Connect").click()
        expect(en.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        expect(page.locator("#recovery-codes li").first).to_have_text(re.compile(r"^[a-z2-9]{5}-[a-z2-9]{5}$"))
        expect(en.get_by_role("button", name="Continue")).to_be_disabled()
        en.get_by_label("I have saved these codes somewhere safe").check()
        en.get_by_role("button", name="Continue").click()
        expect(heading()).to_have_text("Clinic")
        expect(page.get_by_role("heading", name="Register your clinic")).to_be_visible()

        # ---- sign out; sign in again with the keyboard only: password, then the authenticator code
        page.get_by_role("button", name="Sign out").click()
        expect(heading()).to_have_text("Sign in for clinic administrators")
        expect(status).to_have_text("You have signed out.")
        expect(page.get_by_role("navigation", name="Portal sections")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('portal.session')") is None
        portal.advance(31)  # a fresh authenticator time step: a used one is refused as a replay

        page.keyboard.press("Tab")  # focus sits on the screen's heading after sign-out
        expect(page.locator("#login-phone")).to_be_focused()
        page.keyboard.type(ADMIN_PHONE)
        page.keyboard.press("Tab")
        expect(page.locator("#login-password")).to_be_focused()
        page.keyboard.type("not the password")
        page.keyboard.press("Enter")
        expect(page.locator("#form-login .form-error")).to_have_text("Wrong phone number or password")
        page.locator("#login-password").fill("")
        page.locator("#login-password").focus()
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#login-code")).to_be_focused()
        expect(screen("signin").get_by_label("Code from your authenticator app")).to_be_visible()
        page.keyboard.type(portal.totp(secret))
        page.keyboard.press("Enter")
        expect(heading()).to_have_text("Clinic")
        expect(page.locator("#who")).to_have_text("Anna Petrova · Clinic administrator")
        tokens = page.evaluate("JSON.parse(sessionStorage.getItem('portal.session'))")
        assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('session'))") == []
        status_code, me = portal.api("GET", "/me", token=tokens["access_token"])
        assert status_code == 200 and me["second_factor"] == "totp" and me["role"] == "clinic_admin"

        # ---- register the clinic
        cl = screen("clinic")
        cl.get_by_label("Legal name").fill("ООО «Клиника Здоровье»")
        cl.get_by_label("Name for patients (in Russian)").fill("Здоровье")
        cl.get_by_label("Name for patients (in English)").fill("Zdorovye Clinic")
        cl.get_by_label("Tax ID (INN)").fill("3906123456")
        cl.get_by_label("Country").select_option("RU")
        cl.get_by_label("Billing currency").select_option("RUB")
        cl.get_by_role("textbox", name="Phone").fill("+74012123456")
        cl.get_by_role("textbox", name="Email").fill("info@zdorovye.example")
        cl.get_by_role("button", name="Register the clinic").click()
        expect(heading()).to_have_text("Branches and rooms")
        expect(status).to_have_text("The clinic “Zdorovye Clinic” is registered. Now add a branch.")
        clinic_id = page.evaluate("sessionStorage.getItem('portal.clinic')")
        assert re.fullmatch(r"[0-9A-Z]{26}", clinic_id)

        # ---- a branch: the server's error for a zone that does not exist shows next to the field
        br = screen("branches")
        br.get_by_label("Name (in Russian)").fill("Центр")
        br.get_by_label("Name (in English)").fill("Centre")
        br.get_by_label("City", exact=True).fill("Калининград")
        br.get_by_label("Address").fill("ул. Ленина, 1")
        br.get_by_label("Time zone (IANA)").fill("Europe/Atlantis")
        br.get_by_role("button", name="Add the branch").click()
        zone_field = page.locator("#b-zone").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(zone_field.locator(".field-error")).to_have_text("not an IANA time zone such as Europe/Moscow")
        expect(page.locator("#b-zone")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#b-zone")).to_be_focused()
        expect(br.locator("#form-branch .form-error")).to_contain_text("The request has invalid fields")
        br.get_by_label("Time zone (IANA)").fill("Europe/Kaliningrad")
        expect(page.locator("#b-zone-now")).to_contain_text("GMT+2")
        br.get_by_role("checkbox", name="Saturday").check()
        br.get_by_label("Saturday, closes at").fill("14:00")
        br.get_by_role("button", name="Add the branch").click()
        expect(status).to_have_text("Branch “Centre” added (Europe/Kaliningrad).")
        expect(page.locator("#b-zone")).not_to_have_attribute("aria-invalid", "true")
        row = br.locator("#branch-list tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Europe/Kaliningrad")
        expect(row).to_contain_text("Mon 09:00–18:00; Tue 09:00–18:00")
        expect(row).to_contain_text("Sat 09:00–14:00")

        # ---- a room with an MRI scanner in that branch
        br.get_by_label("Branch", exact=True).select_option(label="Centre, Калининград")
        br.get_by_label("Kind (Latin letters)").fill("mri")
        br.get_by_label("Name", exact=True).fill("MRI 1.5T")
        br.get_by_label("Capacity").fill("1")
        br.get_by_role("button", name="Add", exact=True).click()
        expect(status).to_have_text("“MRI 1.5T” added.")
        expect(br.locator("#resource-list tbody tr")).to_contain_text(["MRI 1.5Tmri"])
        shot("branches")

        # ---- a service priced 6500.50 roubles: stored as exactly 650050 kopecks
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Services").click()
        expect(heading()).to_have_text("Services")
        sv = screen("services")
        expect(sv.get_by_text("The clinic has: mri")).to_be_visible()
        sv.get_by_label("Name (in Russian)").fill("МРТ головного мозга")
        sv.get_by_label("Name (in English)").fill("Brain MRI")
        sv.get_by_label("Duration, minutes").fill("40")
        sv.get_by_label("Price, RUB").fill("6500.505")
        sv.get_by_label("Rooms or equipment needed").fill("mri")
        sv.get_by_label("Doctor's specialty (optional)").fill("radiologist")
        sv.get_by_label("In Russian", exact=True).fill("Снимите металлические предметы.")
        sv.get_by_label("In English", exact=True).fill("Remove metal objects.")
        sv.get_by_role("button", name="Add the service").click()
        price_field = page.locator("#s-price").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(price_field.locator(".field-error")).to_have_text("At most 2 digits after the decimal point")
        sv.get_by_label("Price, RUB").fill("6500.50")
        sv.get_by_role("button", name="Add the service").click()
        expect(status).to_have_text("Service “Brain MRI” added: 6,500.50\u00a0RUB.")
        svc_row = sv.locator("#service-list tbody tr")
        expect(svc_row).to_contain_text(["Brain MRI40 min6,500.50\u00a0RUBIn personNo prepaymentmri"])
        status_code, services = portal.api("GET", f"/clinics/{clinic_id}/services", token=tokens["access_token"])
        assert status_code == 200, services
        assert [s["price"] for s in services["items"]] == [{"amount": 650050, "currency": "RUB"}]
        assert services["items"][0]["resource_kinds"] == ["mri"]
        assert services["items"][0]["preparation"] == {"ru": "Снимите металлические предметы.",
                                                       "en": "Remove metal objects."}
        shot("services")

        # ---- invite a doctor; the doctor (signed up in the app) accepts with the SMS code
        doctor = _doctor_account(portal)
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Doctors and schedules").click()
        expect(heading()).to_have_text("Doctors and schedules")
        dr = screen("doctors")
        expect(dr.get_by_text("No doctors yet. A doctor appears here after accepting the invitation.")).to_be_visible()
        sent = len(portal.sms())
        dr.get_by_label("Doctor's phone").fill(DOCTOR_PHONE)
        dr.get_by_role("button", name="Send the invitation").click()
        expect(status).to_have_text(f"Invitation sent to {DOCTOR_PHONE}.")
        expect(dr.locator("#invitation-list tbody tr")).to_contain_text(["Doctorpending"])
        invite_sms = portal.wait_sms(DOCTOR_PHONE, sent)
        code = re.search(r"Code: (\d{6})", invite_sms).group(1)
        invitation_id = re.search(r"invitation ([0-9A-Z]{26})", invite_sms).group(1)
        status_code, accepted = portal.api("POST", "/invitations/accept",
                                           {"invitation_id": invitation_id, "code": code}, token=doctor["token"])
        assert status_code == 200 and accepted == {"clinic_id": clinic_id, "role": "doctor"}, accepted
        dr.get_by_role("button", name="Refresh").click()
        expect(status).to_have_text("List refreshed: 1 doctor(s).")
        expect(dr.locator("#doctor-list tbody tr")).to_contain_text(["Ivan Sokolovradiologist"])
        expect(dr.locator("#invitation-list tbody tr")).to_contain_text(["Doctoraccepted"])

        # ---- a weekly schedule for the doctor: Monday to Friday, 09:00-15:00 in the Kaliningrad branch
        dr.get_by_label("Doctor", exact=True).select_option(label="Ivan Sokolov")
        dr.get_by_label("Branch").select_option(label="Centre (Europe/Kaliningrad)")
        dr.get_by_label("Start").fill("09:00")
        dr.get_by_label("End").fill("15:00")
        dr.get_by_role("button", name="Add the hours").click()
        expect(status).to_have_text("Working hours added: 5.")
        rows = dr.locator("#schedule-list tbody tr")
        expect(rows).to_have_count(5)
        expect(rows.first).to_contain_text("Monday09:00–15:00 (Europe/Kaliningrad)CentreIn person")
        # Monday 14:00-16:00 overlaps: the server's conflict shows above the form
        for day in ("Tuesday", "Wednesday", "Thursday", "Friday"):
            dr.get_by_role("checkbox", name=day).uncheck()
        dr.get_by_label("Start").fill("14:00")
        dr.get_by_label("End").fill("16:00")
        dr.get_by_role("button", name="Add the hours").click()
        expect(dr.locator("#form-template .form-error")).to_contain_text(
            "These hours overlap the doctor's other schedule")
        expect(rows).to_have_count(5)
        dr.get_by_label("Start").fill("09:00")
        dr.get_by_label("End").fill("15:00")
        shot("doctors")
        dr.get_by_role("button", name="Delete: Friday, 09:00–15:00").click()
        expect(status).to_have_text("Working hours deleted.")
        expect(rows).to_have_count(4)
        expect(dr.locator("#schedule-list")).not_to_contain_text("Friday")

        # ---- policies; the access token has expired meanwhile: the portal refreshes it once and carries on
        portal.advance(16 * 60)
        refreshes_before = api_calls.count("POST /auth/refresh")
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Policies").click()
        expect(heading()).to_have_text("Booking policies")
        po = screen("policies")
        expect(po.get_by_label("Free cancellation up to, hours before")).to_have_value("24")
        assert api_calls.count("POST /auth/refresh") == refreshes_before + 1
        po.get_by_label("Free cancellation up to, hours before").fill("12")
        po.get_by_label("Cashback, %").fill("5")
        po.get_by_label("Cashback at most (optional), RUB").fill("300")
        po.get_by_role("button", name="Save the policies").click()
        expect(status).to_have_text("Policies saved.")
        tokens = page.evaluate("JSON.parse(sessionStorage.getItem('portal.session'))")
        status_code, clinic = portal.api("GET", f"/clinics/{clinic_id}", token=tokens["access_token"])
        assert status_code == 200
        assert clinic["policies"]["cancellation_window_hours"] == 12
        assert clinic["policies"]["cashback_percent"] == 5
        assert clinic["policies"]["cashback_cap"] == {"amount": 30000, "currency": "RUB"}
        shot("policies")

        # ---- payouts: onboarding at (local) Stripe, which sends the signed account.updated webhook
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Payouts").click()
        expect(heading()).to_have_text("Payouts")
        pay = screen("payouts")
        expect(page.locator("#payout-facts")).to_contain_text("Statusnot connected")
        expect(page.locator("#payout-facts")).to_contain_text("Charges enabledno")
        pay.get_by_role("button", name="Start payout onboarding").click()
        expect(page.get_by_role("heading", name="Local Stripe onboarding")).to_be_visible()
        assert page.url.startswith(fake_stripe_server.url + "/connect/onboard/acct_")
        page.get_by_role("button", name=re.compile("^Complete onboarding for acct_")).click()
        page.wait_for_url(portal.base_url + "/portal/#payouts")
        expect(heading()).to_have_text("Payouts")
        expect(status).to_have_text("You are back from Stripe. The payout status is up to date.")
        expect(page.locator("#payout-facts")).to_contain_text("Statusconnected")
        expect(page.locator("#payout-facts")).to_contain_text("Charges enabledyes")
        expect(page.locator("#payout-facts")).to_contain_text("Payouts enabledyes")
        expect(pay.get_by_role("button", name="Start payout onboarding")).to_be_hidden()
        shot("payouts")

        # ---- verification status, and submitting the clinic for verification
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Clinic").click()
        expect(heading()).to_have_text("Clinic")
        cl = screen("clinic")
        expect(page.locator("#clinic-status")).to_have_text("draft")
        expect(cl.locator("#verify-checklist li")).to_contain_text(
            ["Branches: 1 (required)", "Services: 1", "Doctors: 1", "Payouts connected"])
        expect(cl.locator("#verify-checklist li.no")).to_have_count(0)
        cl.get_by_role("button", name="Submit for verification").click()
        expect(status).to_have_text("The clinic was submitted for verification.")
        expect(page.locator("#clinic-status")).to_have_text("submitted for verification")
        expect(cl.get_by_role("button", name="Submit for verification")).to_be_hidden()
        expect(page.locator("#clinic-facts")).to_contain_text("Zdorovye Clinic")
        page.get_by_role("button", name="Русский").click()
        expect(heading()).to_have_text("Клиника")
        expect(page.locator("#clinic-status")).to_have_text("на проверке")
        shot("clinic")
        page.get_by_role("button", name="English").click()
        status_code, clinic = portal.api("GET", f"/clinics/{clinic_id}", token=tokens["access_token"])
        assert clinic["status"] == "submitted" and clinic["payouts"]["charges_enabled"] is True

        # ---- the analytics dashboard: charts with their tables, honest where money has not been seen
        page.get_by_role("navigation", name="Portal sections").get_by_role("link", name="Analytics").click()
        expect(heading()).to_have_text("Clinic analytics")
        dash = screen("dashboard")
        expect(dash.locator("#dash-out h2")).to_contain_text(
            ["The period", "Schedule fill by day", "Visits per doctor", "NPS by week", "Revenue by week"])
        expect(dash.locator("svg.chart")).to_have_count(3)
        expect(dash.locator("#dash-out")).to_contain_text("Not available yet: no payments so far.")
        page.get_by_role("button", name="Русский").click()
        dash.get_by_role("button", name="Показать", exact=True).click()
        expect(dash.locator("#dash-out h2").first).to_have_text("Итоги периода")
        page.get_by_role("button", name="English").click()
        # (the screenshots of the dashboard, payments and feedback pages come from the journeys below, with data)

        assert not problems, problems
    finally:
        context.close()


def _doctor_account(portal: PortalServer) -> dict[str, Any]:
    """A doctor signs up in the app (over HTTP here), enrols an authenticator app and fills a profile."""
    sent = len(portal.sms())
    status, challenge = portal.api("POST", "/auth/signup", {
        "phone": DOCTOR_PHONE, "password": PASSWORD, "first_name": "Ivan", "last_name": "Sokolov",
        "birth_date": "1980-02-01", "consent": {"version": "2026-11", "accepted": True}, "language": "en",
        "role": "doctor"})
    assert status == 202, challenge
    status, tokens = portal.api("POST", "/auth/signup/verify", {"challenge_id": challenge["challenge_id"],
                                                                "code": portal.code(DOCTOR_PHONE, sent)})
    assert status == 201, tokens
    token = tokens["access_token"]
    portal.advance(61)  # the SMS cooldown per phone
    sent = len(portal.sms())
    status, step = portal.api("POST", "/me/step-up", {}, token=token)
    assert status == 202, step
    status, granted = portal.api("POST", "/me/step-up/verify", {"challenge_id": step["challenge_id"],
                                                                "code": portal.code(DOCTOR_PHONE, sent)}, token=token)
    assert status == 200, granted
    status, enrolment = portal.api("POST", "/me/totp", {}, token=token)
    assert status == 201, enrolment
    status, codes = portal.api("POST", "/me/totp/confirm", {"code": portal.totp(enrolment["secret"])}, token=token)
    assert status == 200, codes
    status, profile = portal.api("PUT", "/me/doctor-profile", {
        "specialties": ["radiologist"], "years_of_experience": 9, "languages": ["ru", "en"]}, token=token)
    assert status == 200, profile
    return {"token": token, "secret": enrolment["secret"]}


# ------------------------------------------------------------------ a clinic with a few days of work behind it

BERLIN = "Europe/Berlin"
STAFF_PHONES = {"admin": "+79115550301", "platform": "+79115550302", "vogel": "+79115550303",
                "berger": "+79115550304"}
PATIENT_PHONES = [f"+791155504{i:02d}" for i in range(1, 9)]
FEE = 8000  # the visit at the desk: 80.00 EUR
COMMENTS = ["Всё прошло отлично, спасибо доктору!", "Долго ждала в коридоре.", "Very attentive, explained everything.",
            None, "Рекомендую друзьям.", "The room was cold.", None]


class Person:
    """Someone using the API: their token pair (refreshed when the server's clock has moved on) and secret."""

    def __init__(self, portal: PortalServer, phone: str, pair: dict[str, Any], user_id: str = "",
                 totp: str = "", name: str = "") -> None:
        self.portal, self.phone, self.pair = portal, phone, pair
        self.user_id, self.totp, self.name = user_id, totp, name
        self.at = portal.now()

    def token(self) -> str:
        if (self.portal.now() - self.at).total_seconds() > 10 * 60:  # access tokens live 15 minutes
            status, pair = self.portal.api("POST", "/auth/refresh", {"refresh_token": self.pair["refresh_token"]})
            assert status == 200, pair
            self.pair, self.at = pair, self.portal.now()
        return self.pair["access_token"]

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = self.portal.api(method, path, body, token=self.token())
        assert got == status, (method, path, got, json.dumps(answer, ensure_ascii=False))
        return answer


def _sign_up(portal: PortalServer, phone: str, first: str, last: str, role: str) -> Person:
    portal.advance(61)  # one SMS a minute per phone
    sent = len(portal.sms())
    status, challenge = portal.api("POST", "/auth/signup", {
        "phone": phone, "password": PASSWORD, "first_name": first, "last_name": last, "birth_date": "1984-06-02",
        "consent": {"version": "2026-11", "accepted": True}, "language": "ru", "role": role})
    assert status == 202, challenge
    status, pair = portal.api("POST", "/auth/signup/verify", {"challenge_id": challenge["challenge_id"],
                                                              "code": portal.code(phone, sent)})
    assert status == 201, pair
    person = Person(portal, phone, pair, name=f"{first} {last}")
    person.user_id = person.ok("GET", "/me")["user_id"]
    return person


def _staff(portal: PortalServer, phone: str, first: str, last: str, role: str) -> Person:
    """Signed up, stepped up with the next SMS code, an authenticator enrolled: a TOTP-level session."""
    person = _sign_up(portal, phone, first, last, role)
    portal.advance(61)
    sent = len(portal.sms())
    step = person.ok("POST", "/me/step-up", {}, 202)
    person.ok("POST", "/me/step-up/verify", {"challenge_id": step["challenge_id"], "code": portal.code(phone, sent)})
    person.totp = person.ok("POST", "/me/totp", {}, 201)["secret"]
    person.ok("POST", "/me/totp/confirm", {"code": portal.totp(person.totp)})
    return person


def _move_to(portal: PortalServer, local: datetime) -> None:
    """Move the server's clock forward to a moment given in Berlin time."""
    ahead = (local - portal.now()).total_seconds()
    assert ahead > 0, (local, portal.now())
    portal.advance(ahead)


@pytest.fixture(scope="module")
def clinic_data(portal, fake_stripe_server) -> dict[str, Any]:
    """A Berlin clinic (EUR, payouts connected at the local Stripe) with two doctors and eight patients, after two
    days of work: 32 visits booked over HTTP the way the app books them, each day's visits marked by their doctor
    (one no-show per doctor and day), paid at the desk and most of them rated with a comment; then the outbox's
    follow-ups run (analytics counters). Left for the browser: two visits of a prepaid service held for payment and
    one prepaid online through the local Stripe."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(BERLIN)
    admin = _staff(portal, STAFF_PHONES["admin"], "Greta", "Hahn", "clinic_admin")
    platform = _staff(portal, STAFF_PHONES["platform"], "Ops", "Platform", "clinic_admin")
    portal.set_role(platform.phone, "platform_admin")
    doctors = [_staff(portal, STAFF_PHONES["vogel"], "Lena", "Vogel", "doctor"),
               _staff(portal, STAFF_PHONES["berger"], "Paul", "Berger", "doctor")]
    clinic = admin.ok("POST", "/clinics", {
        "legal_name": "Praxis Spree GmbH", "display_name": {"ru": "Практика Шпрее", "en": "Praxis Spree"},
        "tax_id": "DE123456789", "country": "DE", "currency": "EUR",
        "contacts": {"phone": "+493012345678", "email": "praxis@spree.example", "public": ["phone"]}}, 201)
    cid = clinic["clinic_id"]
    week = {d: [{"start": "08:00", "end": "20:00"}] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    branch = admin.ok("POST", f"/clinics/{cid}/branches", {
        "name": {"ru": "Кройцберг", "en": "Kreuzberg"}, "address": "Oranienstraße 1", "city": "Berlin",
        "time_zone": BERLIN, "opening_hours": week}, 201)["branch_id"]
    for doctor in doctors:
        portal.advance(61)
        sent = len(portal.sms())
        inv = admin.ok("POST", f"/clinics/{cid}/invitations", {"role": "doctor", "phone": doctor.phone}, 201)
        doctor.ok("POST", "/invitations/accept", {"invitation_id": inv["invitation_id"],
                                                  "code": portal.code(doctor.phone, sent)})
        doctor.ok("PUT", "/me/doctor-profile", {"specialties": ["therapist"], "years_of_experience": 11,
                                                  "languages": ["de", "en", "ru"]})
        for day in week:
            admin.ok("POST", f"/clinics/{cid}/doctors/{doctor.user_id}/templates", {
                "branch_id": branch, "modality": "in_person", "weekday": day, "start": "09:00", "end": "17:00"}, 201)
    visit = admin.ok("POST", f"/clinics/{cid}/services", {
        "name": {"ru": "Приём терапевта", "en": "GP consultation"}, "duration_minutes": 30,
        "price": {"amount": FEE, "currency": "EUR"}, "modality": "in_person", "specialty": "therapist"}, 201)
    onboarding = admin.ok("POST", f"/clinics/{cid}/payouts/onboarding", {}, 201)
    account = re.search(r"/connect/onboard/(acct_\w+)", onboarding["onboarding_url"]).group(1)
    fake_stripe_server.complete_onboarding(account)  # sends the signed account.updated webhook to the app
    assert admin.ok("GET", f"/clinics/{cid}/payouts")["charges_enabled"] is True
    prepaid = admin.ok("POST", f"/clinics/{cid}/services", {
        "name": {"ru": "Приём терапевта с предоплатой", "en": "GP consultation, prepaid"}, "duration_minutes": 30,
        "price": {"amount": 12000, "currency": "EUR"}, "modality": "in_person", "specialty": "therapist",
        "prepayment": {"kind": "fixed", "amount": {"amount": 4000, "currency": "EUR"}}}, 201)
    admin.ok("POST", f"/clinics/{cid}/submit")
    platform.ok("POST", f"/clinics/{cid}/verify")
    admin.ok("POST", f"/clinics/{cid}/activate")
    patients = [_sign_up(portal, phone, "Пациент", f"Номер {i + 1}", "patient")
                for i, phone in enumerate(PATIENT_PHONES)]

    portal.drain(snapshot=True)  # the schedules of the coming days, as analytics' 6-hourly job takes them
    today = portal.now().astimezone(zone).date()
    days = [today + timedelta(days=1), today + timedelta(days=2)]

    def slots(doctor: Person, service: dict[str, Any], first: Any, last: Any) -> list[dict[str, Any]]:
        q = f"clinic_id={cid}&service_id={service['service_id']}&date_from={first}&date_to={last}"
        return portal.api("GET", f"/catalog/doctors/{doctor.user_id}/slots?{q}")[1]["items"]

    def book(patient: Person, doctor: Person, service: dict[str, Any], slot: dict[str, Any]) -> dict[str, Any]:
        got, b = portal.api("POST", "/bookings", {"clinic_id": cid, "service_id": service["service_id"],
                                                  "doctor_id": doctor.user_id, "branch_id": slot["branch_id"],
                                                  "start": slot["start"]}, token=patient.token())
        assert got == 201, b
        return b

    visits: list[dict[str, Any]] = []  # {"booking", "patient", "doctor", "day"}
    n = 0
    for day in days:
        for d_i, doctor in enumerate(doctors):
            free = slots(doctor, visit, day, day)
            assert len(free) >= 16, free
            for slot in free[d_i:16 + d_i:2]:  # 8 visits a doctor a day, an hour apart (the second on the half hour)
                patient = patients[n % len(patients)]
                n += 1
                b = book(patient, doctor, visit, slot)
                assert b["status"] == "confirmed", b
                visits.append({"booking": b["booking_id"], "patient": patient, "doctor": doctor, "day": day})

    answers: list[dict[str, Any]] = []
    paid: list[dict[str, Any]] = []
    for d_i, day in enumerate(days):
        _move_to(portal, datetime(day.year, day.month, day.day, 18, 30, tzinfo=zone))
        todays = [v for v in visits if v["day"] == day]
        for doctor in doctors:  # the last patient of each doctor's day does not come
            mine = [v for v in todays if v["doctor"] is doctor]
            for i, v in enumerate(mine):
                v["status"] = "no_show" if i == len(mine) - 1 else "completed"
        came = [v for v in todays if v["status"] == "completed"]
        for i, v in enumerate(came):  # paid at the desk on arrival
            method = "cash" if i % 3 else "card_terminal"
            p = admin.ok("POST", f"/clinics/{cid}/payments/reception", {
                "booking_id": v["booking"], "method": method, "amount": {"amount": FEE, "currency": "EUR"},
                "received_by": "Reception"}, 201)
            paid.append({"payment_id": p["payment_id"], "day": day, "method": method, "amount": FEE})
        for v in todays:  # the doctor marks each visit
            v["doctor"].ok("POST", f"/bookings/{v['booking']}/{'no-show' if v['status'] == 'no_show' else 'complete'}")
        for i, v in enumerate(came):
            # Vogel's patients are happier than Berger's; one visit in seven goes unrated
            if (i + d_i) % 7 == 6:
                continue
            score = (10, 9, 9, 8, 10, 6, 9)[i % 7] if v["doctor"] is doctors[0] else (7, 4, 9, 8, 3, 10, 6)[i % 7]
            comment = COMMENTS[(i + d_i) % len(COMMENTS)]
            body = {"booking_id": v["booking"], "score": score, **({"comment": comment} if comment else {})}
            v["patient"].ok("POST", "/feedback", body, 201)
            answers.append({"doctor": v["doctor"], "score": score, "comment": comment, "day": day})

    # left for the browser: two prepaid visits held for payment, and one prepaid online through the local Stripe
    ahead = today + timedelta(days=4)
    free = slots(doctors[0], prepaid, ahead, ahead)
    held = [book(patients[0], doctors[0], prepaid, free[0]), book(patients[1], doctors[0], prepaid, free[2])]
    assert [b["status"] for b in held] == ["held", "held"], held
    online = book(patients[2], doctors[0], prepaid, free[4])
    sheet = patients[2].ok("POST", f"/bookings/{online['booking_id']}/payment", {}, 201)
    pi = sheet["client_secret"].split("_secret_")[0]
    assert fake_stripe_server.payments.confirm(pi)[0] == 200  # the card is charged; the webhook confirms the visit
    assert patients[2].ok("GET", f"/bookings/{online['booking_id']}")["status"] == "confirmed"
    portal.drain()
    return {"clinic_id": cid, "admin": admin, "doctors": doctors, "patients": patients, "days": days,
            "visits": visits, "answers": answers, "paid": paid, "held": held, "online": sheet, "zone": zone,
            "visit_service": visit}



# ------------------------------------------------------------------ the journeys over that clinic

AXE = ROOT / "tools" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def _nps(scores: list[int]) -> int:
    """Hand-computed NPS: the share of promoters (9-10) minus the share of detractors (0-6), in whole percent."""
    return round(100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores))


def _axe(page: Any, where: str) -> None:
    """axe-core (tools/npm, pinned) over the page as shown: no violation of serious or critical impact."""
    if not AXE.exists():
        _missing(f"{AXE.relative_to(ROOT)} is missing (make tools installs tools/npm from its lock)")
    if not page.evaluate("typeof window.axe === 'object'"):
        # evaluated by the browser's debugging protocol, which the page's CSP does not govern (a <script> would be
        # refused, rightly, by script-src 'self')
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate("""axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))""")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{where}: {json.dumps(bad, indent=1)}"


class Journey:
    """A browser tab of a clinic administrator signed in to the portal (English unless switched)."""

    def __init__(self, portal: PortalServer, browser: Any, person: Person) -> None:
        self.portal = portal
        self.context = browser.new_context(locale="en-GB", timezone_id="Europe/Moscow",
                                           viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        # script errors and CSP refusals; the browser's own line for a 4xx answer is expected where a test sends one
        self.page.on("console", lambda msg: self.problems.append(f"console: {msg.text}")
                     if (msg.type == "error" and "the server responded with a status of 4" not in msg.text)
                     or "Content Security Policy" in msg.text else None)
        self.person = person

    def heading(self) -> Any:
        return self.page.locator("section[data-screen]:not([hidden]) h1")

    def sign_in(self) -> None:
        from playwright.sync_api import expect

        page = self.page
        self.portal.advance(31)  # a fresh authenticator step: a code is used once
        page.goto(self.portal.base_url + "/portal/")
        expect(self.heading()).to_have_text("Sign in for clinic administrators")
        form = page.locator("#form-login")
        form.get_by_label("Phone").fill(self.person.phone)
        form.get_by_label("Password").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        code = page.locator("#form-login-code")
        code.get_by_label("Code from your authenticator app").fill(self.portal.totp(self.person.totp))
        code.get_by_role("button", name="Sign in").click()
        expect(self.heading()).to_have_text("Clinic")
        expect(page.locator("#who")).to_have_text(f"{self.person.name} · Clinic administrator")

    def open(self, link: str, title: str) -> Any:
        from playwright.sync_api import expect

        self.page.get_by_role("navigation", name="Portal sections").get_by_role("link", name=link).click()
        expect(self.heading()).to_have_text(title)
        return self.page.locator("section[data-screen]:not([hidden])")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems


def test_the_dashboard_names_doctors_and_takes_a_custom_period(portal, clinic_data, browser):
    from playwright.sync_api import expect

    d1, d2 = clinic_data["days"]
    vogel, berger = clinic_data["doctors"]
    j = Journey(portal, browser, clinic_data["admin"])
    try:
        j.sign_in()
        dash = j.open("Analytics", "Clinic analytics")
        expect(dash.locator("#dash-out h2").first).to_have_text("The period")
        dash.get_by_label("Period").select_option(label="Own dates")
        expect(dash.get_by_label("Month")).to_be_hidden()
        # the end before the start: named at its field before anything is sent
        dash.get_by_label("From").fill(d2.isoformat())
        dash.get_by_label("To (inclusive)").fill(d1.isoformat())
        dash.get_by_role("button", name="Show", exact=True).click()
        to_field = dash.locator("#dash-to").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(to_field.locator(".field-error")).to_have_text("The end date is before the start date.")
        expect(dash.locator("#dash-to")).to_have_attribute("aria-invalid", "true")
        # more than 366 days: the server's 422 names date_to, and the portal shows it there
        dash.get_by_label("From").fill((d1 - timedelta(days=400)).isoformat())
        dash.get_by_label("To (inclusive)").fill(d2.isoformat())
        dash.get_by_role("button", name="Show", exact=True).click()
        expect(to_field.locator(".field-error")).to_contain_text("366")
        expect(dash.locator("#form-dashboard .form-error")).to_contain_text("The request has invalid fields")

        # the two days the clinic worked
        dash.get_by_label("From").fill(d1.isoformat())
        dash.get_by_label("To (inclusive)").fill(d2.isoformat())
        dash.get_by_role("button", name="Show", exact=True).click()
        expect(dash.locator("#dash-to")).not_to_have_attribute("aria-invalid", "true")
        visits = clinic_data["visits"]
        came = [v for v in visits if v["status"] == "completed"]
        scores = [a["score"] for a in clinic_data["answers"]]
        totals = dash.locator(".dash-totals")
        expect(totals).to_contain_text(f"Visits{len(came)}")
        expect(totals).to_contain_text(f"No-shows{len(visits) - len(came)}")
        expect(totals).to_contain_text(f"NPS{_nps(scores)}")
        expect(totals).to_contain_text("(Europe/Berlin)")
        revenue = sum(p["amount"] for p in clinic_data["paid"]) + clinic_data["online"]["amount"]["amount"]
        expect(totals).to_contain_text(f"Revenue{revenue // 100:,}.{revenue % 100:02d}\u00a0EUR")

        # doctors by name (the clinic's doctor list), in the chart's labels and its table; never an id's tail
        chart = dash.locator("section.dash-chart", has=j.page.get_by_role("heading", name="Visits per doctor"))
        labels = {vogel.user_id: "L. Vogel", berger.user_id: "P. Berger"}
        expect(chart.locator("svg text")).to_have_text([labels[k] for k in sorted(labels)])  # in the API's order
        chart.get_by_text("The same data as a table").click()
        for doctor in (vogel, berger):
            mine = [v for v in came if v["doctor"] is doctor]
            theirs = [a["score"] for a in clinic_data["answers"] if a["doctor"] is doctor]
            row = chart.locator("tbody tr", has_text=doctor.name)
            expect(row).to_have_count(1)
            expect(row.locator("td")).to_have_text([doctor.name, str(len(mine)), _money_text(len(mine) * FEE),
                                                    "2", "—", str(_nps(theirs)), str(len(theirs))])
            expect(dash.locator("#dash-out")).not_to_contain_text(doctor.user_id[-6:])
        # the fill rate: booked minutes over the scheduled ones, each day
        fill = dash.locator("section.dash-chart", has=j.page.get_by_role("heading", name="Schedule fill by day"))
        expect(fill.locator("svg rect.chart-bar")).to_have_count(2)
        fill.get_by_text("The same data as a table").click()
        expect(fill.locator("tbody tr")).to_have_count(2)
        expect(fill.locator("tbody tr").first).to_contain_text(d1.isoformat())
        _axe(j.page, "dashboard (en)")
        j.shot("dashboard")

        j.page.get_by_role("button", name="Русский").click()
        expect(j.heading()).to_have_text("Аналитика клиники")
        expect(dash.locator("#dash-out h2").first).to_have_text("Итоги периода")
        expect(dash.get_by_label("Период")).to_have_value("custom")
        expect(dash.locator(".dash-totals")).to_contain_text(f"Визитов{len(came)}")
        _axe(j.page, "dashboard (ru)")
        j.shot("dashboard-ru")
    finally:
        j.close()


def test_administrators_read_the_feedback_by_doctor_and_period(portal, clinic_data, browser):
    from playwright.sync_api import expect

    d1, d2 = clinic_data["days"]
    vogel, berger = clinic_data["doctors"]
    answers = clinic_data["answers"]
    j = Journey(portal, browser, clinic_data["admin"])
    try:
        j.sign_in()
        fb = j.open("Feedback", "Patient feedback")
        fb.get_by_label("From").fill(d2.isoformat())
        fb.get_by_label("To (inclusive)").fill(d2.isoformat())
        fb.get_by_role("button", name="Show", exact=True).click()
        # the period's NPS per doctor and for the clinic: the second day only
        period = fb.locator("#fb-period tbody tr")
        expect(period).to_have_count(3)
        for doctor in (vogel, berger):
            theirs = [a["score"] for a in answers if a["doctor"] is doctor and a["day"] == d2]
            expect(period.filter(has_text=doctor.name).locator("td").nth(1)).to_have_text(str(len(theirs)))
            expect(period.filter(has_text=doctor.name).locator("td").nth(2)).to_have_text(str(_nps(theirs)))
        second = [a["score"] for a in answers if a["day"] == d2]
        expect(period.last.locator("td").first).to_have_text("The clinic as a whole")
        expect(period.last.locator("td").nth(2)).to_have_text(str(_nps(second)))

        # the answers of the same period (the second day), newest first, with the all-time counts beside them
        rows = fb.locator("#fb-list tbody tr")
        expect(rows).to_have_count(len(second))
        expect(fb.locator("#fb-alltime")).to_have_text(
            f"All time: {len(answers)} answers, NPS {_nps([a['score'] for a in answers])}, average score "
            f"{round(sum(a['score'] for a in answers) / len(answers), 1)}.")
        expect(fb.locator("#fb-shown")).to_have_text(f"{len(second)} of {len(second)} shown.")
        expect(fb.get_by_role("button", name="Show more")).to_be_hidden()
        comments = [a["comment"] for a in answers if a["comment"] and a["day"] == d2]
        for text in set(comments):
            expect(rows.filter(has_text=text)).to_have_count(comments.count(text))
        expect(rows.filter(has_text="no comment")).to_have_count(len(second) - len(comments))
        expect(rows.first.locator("td").first).to_contain_text(re.compile(r"CET|GMT\+1"))  # the clinic's zone
        for a_row in rows.all():  # by name, never an id
            assert a_row.locator("td").nth(1).inner_text() in (vogel.name, berger.name)

        # one doctor's answers of the period and all-time counts
        fb.get_by_label("Doctor").select_option(label=berger.name)
        fb.get_by_role("button", name="Show", exact=True).click()
        theirs = [a["score"] for a in answers if a["doctor"] is berger]
        expect(rows).to_have_count(len([a for a in answers if a["doctor"] is berger and a["day"] == d2]))
        expect(fb.locator("#fb-alltime")).to_contain_text(
            f"{berger.name}, all time: {len(theirs)} answers, NPS {_nps(theirs)}")
        expect(rows.filter(has_text=vogel.name)).to_have_count(0)
        _axe(j.page, "feedback (en)")

        # both days: more than a page, 20 at a time
        fb.get_by_label("Doctor").select_option(label="All doctors")
        fb.get_by_label("From").fill(d1.isoformat())
        fb.get_by_role("button", name="Show", exact=True).click()
        expect(rows).to_have_count(20)
        expect(fb.locator("#fb-shown")).to_have_text(f"20 of {len(answers)} shown.")
        fb.get_by_role("button", name="Show more").click()
        expect(rows).to_have_count(len(answers))
        expect(j.page.locator("#fb-list tbody tr").nth(20)).to_be_focused()
        expect(fb.get_by_role("button", name="Show more")).to_be_hidden()
        fb.get_by_role("button", name="Show", exact=True).click()
        expect(rows).to_have_count(20)
        j.shot("feedback")

        j.page.get_by_role("button", name="Русский").click()
        expect(j.heading()).to_have_text("Отзывы пациентов")
        expect(fb.locator("#fb-period tbody tr").last.locator("td").first).to_have_text("Клиника в целом")
        expect(rows.filter(has_text="без комментария").first).to_be_visible()
        _axe(j.page, "feedback (ru)")
        j.shot("feedback-ru")
    finally:
        j.close()


def _money_text(minor: int) -> str:
    return f"{minor // 100:,}.{minor % 100:02d}\u00a0EUR"


def test_staff_take_payments_send_links_refund_and_export_in_the_browser(portal, clinic_data, fake_stripe_server,
                                                                         browser):
    import csv
    import io

    from playwright.sync_api import expect

    d1, d2 = clinic_data["days"]
    cid, admin = clinic_data["clinic_id"], clinic_data["admin"]
    desk, link = clinic_data["held"]
    online = clinic_data["online"]
    j = Journey(portal, browser, admin)
    page = j.page
    status = page.locator("#status")
    try:
        j.sign_in()
        pay = j.open("Payments", "Payments")
        # the range is checked where it is typed: daily totals and the export take at most 92 days
        pay.get_by_label("From").fill((d1 - timedelta(days=100)).isoformat())
        pay.get_by_label("To", exact=True).fill(d2.isoformat())
        pay.get_by_role("button", name="Show", exact=True).click()
        to_field = page.locator("#pay-to").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(to_field.locator(".field-error")).to_have_text("At most 92 days at once.")
        pay.get_by_label("From").fill(d1.isoformat())
        pay.get_by_role("button", name="Show", exact=True).click()
        expect(page.locator("#pay-to")).not_to_have_attribute("aria-invalid", "true")

        # the transactions of the two days, a page of 25 at a time, and the daily totals
        rows = pay.locator("#pay-list tbody tr")
        expect(rows).to_have_count(25)
        expect(pay.locator("#pay-shown")).to_have_text("25 shown; there are more.")
        pay.get_by_role("button", name="Show more").click()
        total = len(clinic_data["paid"]) + 1
        expect(rows).to_have_count(total)
        expect(pay.locator("#pay-shown")).to_have_text(f"{total} shown.")
        expect(pay.get_by_role("button", name="Show more")).to_be_hidden()
        vogel, berger = clinic_data["doctors"]
        berger_paid = sum(1 for v in clinic_data["visits"] if v["doctor"] is berger and v["status"] == "completed")
        expect(rows.filter(has_text="Paul Berger")).to_have_count(berger_paid)
        expect(rows.first.locator("td").first).to_contain_text(re.compile(r"CET|GMT\+1"))  # the clinic's time
        daily = pay.locator("#pay-daily tbody tr")
        expect(daily).to_have_count(2)
        for row, day in zip((daily.first, daily.last), (d1, d2), strict=True):
            paid = [p["amount"] for p in clinic_data["paid"] if p["day"] == day]
            if day == d2:
                paid.append(online["amount"]["amount"])
            expect(row.locator("td")).to_have_text([day.isoformat(), str(len(paid)), _money_text(sum(paid)),
                                                    _money_text(0), _money_text(0), _money_text(sum(paid))])
        # one doctor's payments only
        pay.get_by_label("Doctor").select_option(label=vogel.name)
        pay.get_by_role("button", name="Show", exact=True).click()
        expect(rows.filter(has_text=berger.name)).to_have_count(0)
        expect(rows).to_have_count(total - berger_paid)  # Berger's desk payments left out
        pay.get_by_label("Doctor").select_option(label="All doctors")

        # a payment at the desk for a visit held for its prepayment: the visit is confirmed
        pay.get_by_label("Booking number").first.fill(desk["booking_id"])
        pay.locator("#pay-desk-amount").fill("40.555")
        pay.get_by_role("button", name="Record the payment").click()
        amount_field = page.locator("#pay-desk-amount").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(amount_field.locator(".field-error")).to_have_text("At most 2 digits after the decimal point")
        pay.locator("#pay-desk-amount").fill("40.00")
        pay.get_by_label("Taken by").fill("Greta at the desk")
        pay.get_by_role("button", name="Record the payment").click()
        expect(status).to_have_text("Payment recorded; the booking is confirmed.")
        assert admin.ok("GET", f"/bookings/{desk['booking_id']}")["status"] == "confirmed"
        # that booking is confirmed now: a link for it is refused, and the form says why
        pay.locator("#pay-link-booking").fill(desk["booking_id"])
        pay.get_by_role("button", name="Send the link").click()
        expect(pay.locator("#form-pay-link .form-error")).to_contain_text("the booking is confirmed")

        # a payment link by SMS for the other held visit; the patient pays on the (local) Stripe Checkout page
        sent = len(portal.sms())
        pay.locator("#pay-link-booking").fill(link["booking_id"])
        pay.get_by_role("button", name="Send the link").click()
        expect(status).to_have_text("The link is sent to the patient.")
        portal.drain()  # the outbox's follow-up sends the SMS
        sms = portal.wait_sms(clinic_data["patients"][1].phone, sent)
        assert "Практика Шпрее" in sms and "40,00" in sms, sms
        url = re.search(r"https?://\S+", sms).group(0)
        assert url.startswith(fake_stripe_server.url + "/checkout/pay/"), sms
        import requests

        assert requests.post(url, allow_redirects=False, timeout=10).status_code == 303  # paid with the test card
        assert admin.ok("GET", f"/bookings/{link['booking_id']}")["status"] == "confirmed"

        # a partial refund of the online prepayment, from its row
        pay.get_by_role("button", name="Show", exact=True).click()
        pay.get_by_role("button", name=f"Refund payment {online['payment_id']}").click()
        expect(page.locator("#pay-refund-payment")).to_have_value(online["payment_id"])
        expect(page.locator("#pay-refund-amount")).to_have_value("40.00")
        expect(page.locator("#pay-refund-amount")).to_be_focused()
        page.locator("#pay-refund-amount").fill("45.00")  # more than was paid: the server names the amount
        pay.get_by_label("Reason").fill("Waited too long")
        pay.get_by_role("button", name="Refund", exact=True).click()
        refund_field = page.locator("#pay-refund-amount").locator("xpath=ancestor::div[contains(@class,'field')][1]")
        expect(refund_field.locator(".field-error")).to_have_text(f"At most {_money_text(4000)} can still be refunded.")
        expect(page.locator("#pay-refund-amount")).to_be_focused()
        page.locator("#pay-refund-amount").fill("15.00")
        pay.get_by_role("button", name="Refund", exact=True).click()
        expect(status).to_have_text("The refund is recorded: cash and terminal at once, card payments through Stripe.")
        portal.drain()  # the refund goes to Stripe; its answer settles it
        pay.get_by_label("Status").select_option(label="Refunds")
        pay.get_by_role("button", name="Show", exact=True).click()
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td")).to_contain_text(["Refund", "In the app", "Done", _money_text(1500)])
        pay.get_by_label("Status").select_option(label="Partly refunded")
        pay.get_by_role("button", name="Show", exact=True).click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(online["payment_id"])
        expect(rows.first).to_contain_text(_money_text(1500))
        pay.get_by_label("Status").select_option(label="Any")
        pay.get_by_role("button", name="Show", exact=True).click()
        _axe(page, "payments (en)")
        j.shot("payments")

        # the CSV, in Russian: it opens in a spreadsheet (BOM, ';'), and its rows are the page's rows
        page.get_by_role("button", name="Русский").click()
        expect(j.heading()).to_have_text("Платежи")
        with page.expect_download() as dl:
            pay.get_by_role("button", name="Скачать CSV").click()
        expect(status).to_have_text(f"Файл transactions-{d1}-{d2}.csv скачан.")
        raw = Path(dl.value.path()).read_bytes()
        assert dl.value.suggested_filename == f"transactions-{d1}-{d2}.csv"
        assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]
        table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        head, body = table[0], table[1:]
        assert head[:4] == ["date", "time", "kind", "payment_id"], head
        listed: list[dict[str, Any]] = []
        cursor = ""
        while True:  # every transaction of the range through the API, page by page
            answer = admin.ok("GET", f"/clinics/{cid}/payments?date_from={d1}&date_to={d2}&limit=100{cursor}")
            listed += answer["items"]
            if not answer["next_cursor"]:
                break
            cursor = "&cursor=" + answer["next_cursor"]
        assert sorted((r[2], r[3]) for r in body) == sorted((i["kind"], i["payment_id"]) for i in listed)
        services = {r[head.index("service")] for r in body if r[2] == "payment"}
        assert services == {"Приём терапевта", "Приём терапевта с предоплатой"}, services
        assert "15,00" in [r[head.index("amount")] for r in body if r[2] == "refund"]
        pay.get_by_role("button", name="Показать", exact=True).click()
        expect(pay.locator("#pay-daily tbody tr")).to_have_count(2)
        _axe(page, "payments (ru)")
        j.shot("payments-ru")
    finally:
        j.close()


def test_a_desk_payment_refunded_by_policy_is_owed_at_the_reception_and_paid_out_in_the_browser(
        portal, clinic_data, browser):
    """A visit paid in cash at the desk is cancelled by the clinic: the policy refunds it in full, and as the money
    is in the drawer the refund is owed at the reception. Staff find it with the filter, see it in the day's owed
    total, hand it back with "Paid out", and the row says by whom and when (the clinic's time)."""
    from zoneinfo import ZoneInfo

    from playwright.sync_api import expect

    zone = ZoneInfo(BERLIN)
    cid, admin = clinic_data["clinic_id"], clinic_data["admin"]
    vogel = clinic_data["doctors"][0]
    patient = clinic_data["patients"][3]
    d1 = clinic_data["days"][0]
    # a plain visit five days on, paid in cash at the desk ahead of it, then cancelled by the clinic
    visit = clinic_data["visit_service"]  # no prepayment: booked confirmed
    ahead = portal.now().astimezone(zone).date() + timedelta(days=5)
    q = f"clinic_id={cid}&service_id={visit['service_id']}&date_from={ahead}&date_to={ahead}"
    slot = portal.api("GET", f"/catalog/doctors/{vogel.user_id}/slots?{q}")[1]["items"][3]
    booking = patient.ok("POST", "/bookings", {"clinic_id": cid, "service_id": visit["service_id"],
                                              "doctor_id": vogel.user_id, "branch_id": slot["branch_id"],
                                              "start": slot["start"]}, 201)
    assert booking["status"] == "confirmed", booking
    paid = admin.ok("POST", f"/clinics/{cid}/payments/reception", {
        "booking_id": booking["booking_id"], "method": "cash", "amount": {"amount": FEE, "currency": "EUR"},
        "received_by": "Reception"}, 201)
    admin.ok("POST", f"/bookings/{booking['booking_id']}/cancel", {"reason": "The doctor is ill"})
    portal.drain()  # booking.cancelled -> the policy's refund (the clinic cancelled: all of it)
    refunds = admin.ok("GET", f"/payments/{paid['payment_id']}")["refunds"]
    assert [(r["status"], r["origin"], r["reason"], r["amount"]["amount"]) for r in refunds] == [
        ("owed_at_reception", "policy", "clinic_cancelled", FEE)], refunds
    owed = refunds[0]
    rday = datetime.fromisoformat(owed["created_at"].replace("Z", "+00:00")).astimezone(zone).date()
    totals = f"/clinics/{cid}/payments/daily?date_from={rday}&date_to={rday}"
    [before] = admin.ok("GET", totals)["items"]
    assert before["owed_at_reception"] == {"amount": FEE, "currency": "EUR"}, before

    j = Journey(portal, browser, admin)
    page = j.page
    try:
        j.sign_in()
        pay = j.open("Payments", "Payments")
        pay.get_by_label("From").fill(d1.isoformat())
        pay.get_by_label("To", exact=True).fill(rday.isoformat())
        pay.get_by_label("Status").select_option(label="Refunds owed at the reception")
        pay.get_by_role("button", name="Show", exact=True).click()
        rows = pay.locator("#pay-list tbody tr")
        expect(rows).to_have_count(1)
        row = rows.first
        expect(row.locator("td")).to_contain_text([
            "Refund", "Cash", "Owed at the reception", _money_text(FEE)])
        expect(row.locator("td").nth(1)).to_have_text("Refundby the cancellation rules: cancelled by the clinic")
        expect(row.locator("td").first).to_contain_text(re.compile(r"CET|GMT\+1"))  # the clinic's time
        expect(row).to_contain_text(paid["payment_id"])
        # the day's owed figure is the API's, and it is not counted as refunded
        day_row = pay.locator("#pay-daily tbody tr").filter(has_text=rday.isoformat())
        expect(day_row.locator("td")).to_have_text([
            rday.isoformat(), str(before["payments"]), _money_text(before["paid"]["amount"]),
            _money_text(before["refunded"]["amount"]), _money_text(FEE), _money_text(before["net"]["amount"])])
        _axe(page, "payments, a refund owed (en)")
        j.shot("payments-owed")

        label = f"Paid out: refund of {_money_text(FEE)} for payment {paid['payment_id']}"
        page.get_by_role("button", name=label).click()
        expect(page.locator("#status")).to_have_text(
            f"The refund of {_money_text(FEE)} is paid out at the reception by {admin.name}.")
        # the row is updated where it stands: paid out, by whom and when in the clinic's zone; no button any more
        expect(rows).to_have_count(1)
        expect(row.locator("td").nth(3)).to_have_text(
            re.compile(rf"^Paid out at the reception by {admin.name}, .*(CET|GMT\+1)$"))
        expect(row.get_by_role("button")).to_have_count(0)
        expect(row).to_be_focused()
        [after] = admin.ok("GET", totals)["items"]
        assert after["owed_at_reception"]["amount"] == 0, after
        assert after["refunded"]["amount"] == before["refunded"]["amount"] + FEE, (before, after)
        expect(day_row.locator("td")).to_have_text([
            rday.isoformat(), str(after["payments"]), _money_text(after["paid"]["amount"]),
            _money_text(after["refunded"]["amount"]), _money_text(0), _money_text(after["net"]["amount"])])
        got = admin.ok("GET", f"/payments/{paid['payment_id']}")["refunds"][0]
        assert got["status"] == "succeeded" and got["paid_out_by"] == {"user_id": admin.user_id, "name": admin.name}
        # nothing is owed any more; among the refunds it reads as paid out
        pay.get_by_role("button", name="Show", exact=True).click()
        expect(pay.locator("#pay-list")).to_have_text("No payments on these days.")
        pay.get_by_label("Status").select_option(label="Refunds")
        pay.get_by_role("button", name="Show", exact=True).click()
        mine = rows.filter(has_text=paid["payment_id"])
        expect(mine).to_have_count(1)
        expect(mine.locator("td").nth(3)).to_contain_text(f"Paid out at the reception by {admin.name}")
        page.get_by_role("button", name="Русский").click()
        expect(j.heading()).to_have_text("Платежи")
        expect(mine.locator("td").nth(1)).to_have_text("Возвратпо правилам отмены: отменено клиникой")
        expect(mine.locator("td").nth(3)).to_contain_text(f"Выдан на ресепшене: {admin.name}")
        _axe(page, "payments, a refund paid out (ru)")
        j.shot("payments-owed-ru")
    finally:
        j.close()
