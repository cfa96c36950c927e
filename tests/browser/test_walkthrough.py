"""Issue 17's "Done when", as a newcomer tries it, in one go: ``inbox start`` (what ``make start`` runs) in a
fresh directory, then Debian's chromium against it. The demo admin invites a colleague and finds the mail in
the outbox; the colleague opens the link, sets a password, creates a second company, connects a mailbox
through the local OAuth2 provider the stack started (its consent page, "Allow"), uploads two invoices, and
validates the second under a number typed as the first's: the duplicate choice opens and "Link" attaches
the file to the existing invoice.

Nothing is built in-process: the web (gunicorn), the worker, the SMTP gateway, the IMAP poller, redis and
the provider are the processes ``inbox start`` runs, on free ports, with their own SQLite database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from dashboard.devstack import DEMO_EMAIL, DEMO_TENANT
from tests.browser.test_finance_flows import no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser  # noqa: F401 (fixture)
from tests.invoicegen import make_invoice_pdf

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
STARTUP = 180.0  # seconds for migrations, the demo company and every process (2 shared cores)
PROCESSING = 180_000  # milliseconds for the worker to read the uploaded PDFs
# Settings of the machine running the tests that would change what `inbox start` does.
DROPPED = ("DATABASE_URL", "REDIS_URL", "STORAGE_DIR", "STORAGE_URL", "SECRET_KEY", "MAIL_RELAY_URL", "PUBLIC_URL",
           "INBOUND_DOMAIN", "SIGNUP_ENABLED", "QUEUE_NAME")


@dataclass
class Stack:
    url: str
    password: str
    provider_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log: Path) -> object:
    """Poll ``check`` until it answers something truthy; fail with the stack's log when it dies or hangs."""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"inbox start exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if result := check():  # type: ignore[operator]
            return result
        time.sleep(0.2)
    pytest.fail(f"no {what} within {STARTUP:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def stack() -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):  # `make test` installs it: in CI a missing server is a failure
            pytest.fail("redis-server is missing (scripts/bootstrap.sh installs it)")
        pytest.skip("redis-server is not installed (scripts/bootstrap.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="walk-"))  # short: redis' unix socket path has a length limit
    port, smtp_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith("OAUTH_")}
    env |= {"VAR_DIR": str(workdir / "var"), "PORT": str(port), "SMTP_PORT": str(smtp_port),
            "SENDER_AUTH_DNS": "off", "PYTHONPATH": str(ROOT)}
    log = workdir / "start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "start"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        banner = str(_wait_for("the start banner", lambda: "Press Ctrl-C to stop." in log.read_text()
                               and log.read_text(), proc, log))
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or still booting its workers
                return False

        _wait_for("an answer of the web process", healthy, proc, log)
        login = re.search(rf"Demo login:\s+{re.escape(DEMO_EMAIL)} / (\S+)", banner)
        provider = re.search(r"Connect Gmail leads to a local test provider at (http://127\.0\.0\.1:\d+)", banner)
        assert login and provider, banner
        yield Stack(url=url, password=login.group(1), provider_url=provider.group(1), log=log)
    finally:
        proc.send_signal(signal.SIGTERM)  # the supervisor stops its children, redis last
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _watch(page: Page, problems: list[str]) -> Page:
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page


INVOICE = {"title": "Mission de conseil", "client": "Acme SAS", "issuer": "Claire Conseil", "amount": "1200.00",
           "net_amount": "1000.00", "tax_amount": "200.00", "currency": "EUR", "issue_date": "2026-11-23",
           "due_date": "2026-12-23"}


def _fill_and_confirm(page: Page, number: str) -> None:
    for name, value in INVOICE.items():
        page.locator(f"#f-{name}").fill(value)
    page.locator("#f-doc_type").select_option("invoice")
    page.locator("#f-number").fill(number)
    page.get_by_role("button", name="Confirm").click()


def test_the_newcomers_walkthrough_from_inbox_start(stack: Stack, browser: Browser) -> None:  # noqa: F811
    base = stack.url
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. The demo admin logs in with the banner's credentials and invites a colleague.
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    admin = _watch(admin_context.new_page(), problems)
    admin.goto(f"{base}/login")
    admin.get_by_label("Email").fill(DEMO_EMAIL)
    admin.get_by_label("Password").fill(stack.password)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("heading", name="Pending verification")).to_be_visible()
    admin.goto(f"{base}/settings")
    admin.get_by_role("link", name="Members and client assignments").click()
    admin.get_by_label("E-mail of the person").fill("claire@conseil.example")
    admin.get_by_label("Role", exact=True).select_option("member")
    admin.get_by_role("button", name="Send the invitation").click()
    expect(admin.get_by_role("status").filter(has_text="the message is in the outbox")).to_be_visible()

    # 2. The mail is in the outbox (no relay in the demo), with the link.
    admin.get_by_role("link", name="Outbox").first.click()
    mail = admin.locator(".outbox-message").first
    expect(mail).to_contain_text(f"You are invited to {DEMO_TENANT}")
    found = re.search(r"(http://\S+/invitations/accept\?token=\S+)", mail.locator("pre").inner_text())
    assert found, mail.inner_text()
    assert found.group(1).startswith(f"{base}/")
    admin.screenshot(path=str(ARTIFACTS / "walk-outbox.png"), full_page=True)

    # 3. The colleague joins with a password of their own.
    colleague_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = _watch(colleague_context.new_page(), problems)
    page.goto(found.group(1))
    expect(page.get_by_role("heading", name="Join a company")).to_be_visible()
    page.get_by_label("Choose a password (8 characters or more)").fill("claire's own passphrase")
    page.get_by_label("The same password again").fill("claire's own passphrase")
    page.get_by_role("button", name=f"Join {DEMO_TENANT}").click()
    expect(page.get_by_role("status").filter(has_text=f"Welcome! You joined {DEMO_TENANT}.")).to_be_visible()

    # 4. ... creates a second company, and works in it from now on.
    page.get_by_role("link", name="Companies", exact=True).click()
    page.get_by_label("Company name").fill("Claire Conseil")
    page.get_by_role("button", name="Create the company").click()
    notice = page.get_by_role("status").filter(has_text="Claire Conseil is created")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("@inbox.localhost")
    expect(page.get_by_label("Company").locator("option:checked")).to_have_text("Claire Conseil")

    # 5. ... connects a mailbox through the local provider `inbox start` runs: its consent page, "Allow".
    page.goto(f"{base}/settings/mailboxes")
    page.locator("#hint-google").fill("factures.claire@example.com")
    page.get_by_role("button", name="Connect Gmail").click()
    expect(page.get_by_role("heading", name="Allow access to factures.claire@example.com")).to_be_visible()
    assert page.url.startswith(f"{stack.provider_url}/authorize?")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("status").filter(
        has_text="Google mailbox factures.claire@example.com connected")).to_have_count(1)
    expect(page.locator("#oauth-state")).to_contain_text("Connected through Google (Gmail, Workspace)")
    page.screenshot(path=str(ARTIFACTS / "walk-mailbox.png"), full_page=True)

    # 6. Two invoices uploaded; the worker reads them.
    files = Path(tempfile.mkdtemp(prefix="walk-files-"))
    first, second = files / "FA-2026-0042.pdf", files / "resent.pdf"
    first.write_bytes(make_invoice_pdf(number="FA-2026-0042", issuer="Claire Conseil", client="Acme SAS",
                                       net=Decimal("1000"), tax=Decimal("200")))
    second.write_bytes(make_invoice_pdf(number="FA-2026-0099", issuer="Claire Conseil", client="Acme SAS",
                                        net=Decimal("1000"), tax=Decimal("200")))
    page.goto(f"{base}/imports")
    page.locator("#upload-files").set_input_files([str(first), str(second)])
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Uploaded: the files are being read.")).to_be_visible()
    # The page follows the processing and reloads itself when it is over.
    to_verify = page.locator("li[data-document-id]").filter(has=page.locator(".badge.status-pending"))
    expect(to_verify).to_have_count(2, timeout=PROCESSING)
    shutil.rmtree(files, ignore_errors=True)

    # 7. The first is validated as FA-2026-0042 ...
    page.get_by_role("link", name="FA-2026-0042.pdf").click()
    _fill_and_confirm(page, "FA-2026-0042")
    expect(page.get_by_role("link", name="Invoice FA-2026-0042")).to_be_visible()
    # 8. ... the second, typed with the same number, opens the duplicate choice; "Link" attaches it.
    page.goto(f"{base}/pending")
    page.get_by_role("link", name="resent.pdf").click()
    _fill_and_confirm(page, "fa-2026-0042")
    expect(page.get_by_text("This number is already used: link, replace or discard below.")).to_be_visible()
    expect(page.locator(".fields .row").filter(has_text="Client").locator("dd")).to_contain_text("Acme SAS")
    page.screenshot(path=str(ARTIFACTS / "walk-duplicate.png"), full_page=True)
    page.get_by_role("button", name="Link").click()
    expect(page.get_by_text("File linked to invoice FA-2026-0042.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/invoices/\d+$"))

    # Only one invoice in the company, nothing left to verify, and the demo company saw none of it.
    page.goto(f"{base}/invoices")
    expect(page.get_by_role("link", name="FA-2026-0042")).to_have_count(1)
    page.goto(f"{base}/pending")
    expect(page.get_by_role("link", name="resent.pdf")).to_have_count(0)
    admin.goto(f"{base}/invoices")
    expect(admin.get_by_text("FA-2026-0042")).to_have_count(0)
    no_csp_problems(problems)
    admin_context.close()
    colleague_context.close()
