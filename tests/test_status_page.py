"""The status page in a real browser (Debian's Chromium, driven by Playwright).

One `datasaur-notifier run` with an `api:` section, the simulator and two receivers serve
every test of this module; each test uses jobs of its own. The first test saves the
README's screenshot (docs/status-page.png).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET, base_config, webhook
from tests.support.daemon import DaemonProcess, write_config
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, WRITE_TOKEN, Client, api_section, free_port

sync_api = pytest.importorskip("playwright.sync_api")
Browser = sync_api.Browser
Page = sync_api.Page
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI = Path(__file__).resolve().parent.parent / "notifier" / "api" / "ui"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "status-page.png"
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 10_000


@dataclass
class Stack:
    """The daemon and its surroundings, as the browser sees them."""

    base: str
    simulator: DatasaurSimulator
    hook: WebhookReceiver  # callback "hook": answers 200
    flaky: WebhookReceiver  # callback "flaky": answers what a test tells it
    daemon: DaemonProcess

    def register(self, job_id: str, name: str | None = None, **fields: Any) -> None:
        body = {"id": job_id, "name": name, **fields}
        answer = Client(self.base).call("POST", "/v1/jobs", json=body)
        assert answer.status_code == 201, answer.text

    def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        answer = Client(self.base).call("GET", "/v1/deliveries", params={"job_id": job_id})
        return list(answer.json()["deliveries"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("status-page")
    with (
        DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as simulator,
        WebhookReceiver(secret=WEBHOOK_SECRET) as hook,
        WebhookReceiver(secret=WEBHOOK_SECRET) as flaky,
    ):
        port = free_port()
        config = base_config(
            simulator,
            tmp,
            callbacks={"hook": webhook(hook), "flaky": webhook(flaky)},
            api=api_section(port),
        )
        daemon = DaemonProcess(write_config(tmp / "config.yaml", config)).start()
        try:
            daemon.wait_ready()
            yield Stack(f"http://127.0.0.1:{port}", simulator, hook, flaky, daemon)
        finally:
            daemon.stop()
        assert "Traceback" not in daemon.output
        for token in (WRITE_TOKEN, READ_TOKEN):
            assert token not in daemon.output


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium; skips without it, unless ``NOTIFIER_TEST_BROWSER_REQUIRED`` (CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("NOTIFIER_TEST_BROWSER_REQUIRED"):
            pytest.fail(f"no {CHROMIUM}: apt-get install chromium")
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with what it logged and the dialogs it opened."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def unexpected_errors(self, *allowed_statuses: int) -> list[str]:
        """Console errors, but for failed loads of the HTTP statuses a test provoked."""
        allowed = [f"status of {status} " for status in allowed_statuses]
        return [e for e in self.console_errors if not any(a in e for a in allowed)]


@pytest.fixture
def tab(browser: Browser, stack: Stack) -> Iterator[Tab]:
    context = browser.new_context(
        base_url=stack.base, viewport={"width": 1280, "height": 560}, color_scheme="light"
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    opened = Tab(page)
    page.on(
        "console",
        lambda message: (
            opened.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: opened.console_errors.append(f"uncaught: {error}"))

    def dialog(shown: Any) -> None:
        opened.dialogs.append(shown.message)
        shown.dismiss()

    page.on("dialog", dialog)
    yield opened
    context.close()


def sign_in(page: Page, token: str) -> None:
    page.goto("/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def job_row(page: Page, job_id: str) -> Any:
    return page.locator("#view-jobs tbody tr").filter(has_text=job_id)


def delivery_row(page: Page, job_id: str) -> Any:
    return page.locator("#view-deliveries tbody tr").filter(has_text=job_id)


def test_jobs_follow_progress_live_and_finish(tab: Tab, stack: Stack) -> None:
    page, sim = tab.page, stack.simulator
    sim.set_job("AutoLabelQueue:page-0001", "DELIVERED", 100)
    sim.set_job("ExportQueue:page-0002", "IN_PROGRESS", 20)
    sim.set_job("AutoLabelQueue:page-0003", "QUEUED", 0)
    quota = {"id": "ProjectCreation:page-0004:error", "stack": "Error: project quota exceeded"}
    sim.set_job("ProjectCreation:page-0004", "FAILED", 0, errors=[{**quota, "args": {}}])
    stack.register("AutoLabelQueue:page-0001", "auto-label batch 12", notify=["hook"])
    stack.register("ExportQueue:page-0002", "nightly export to S3", notify=["hook"])
    stack.register("AutoLabelQueue:page-0003", "auto-label batch 13", notify=["hook"])
    stack.register("ProjectCreation:page-0004", "project creation", notify=["hook"])

    with page.expect_response(re.compile(r"/v1/jobs\?")) as listed:
        sign_in(page, WRITE_TOKEN)
    for answer in (page.request.get("/"), listed.value):
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert page.evaluate("Object.keys(sessionStorage).length") == 1
    assert WRITE_TOKEN not in page.url and page.context.cookies() == []

    export = job_row(page, "ExportQueue:page-0002")
    expect(export.locator("progress")).to_have_attribute("value", "20")
    expect(export).to_have_class(re.compile(r"\bstate-watching\b"))
    expect(export).to_contain_text("nightly export to S3")
    expect(job_row(page, "AutoLabelQueue:page-0001")).to_have_class(re.compile(r"\bstate-done\b"))
    expect(job_row(page, "ProjectCreation:page-0004")).to_have_class(re.compile(r"\bfailed\b"))

    # Filter and search survive the live refresh while the bar follows the simulator.
    jobs = page.locator("#view-jobs")
    jobs.get_by_label("State").select_option("watching")
    jobs.get_by_label("Search").fill("nightly")
    expect(page.locator("#view-jobs tbody tr")).to_have_count(1)
    sim.set_job("ExportQueue:page-0002", "IN_PROGRESS", 65)
    expect(export.locator("progress")).to_have_attribute("value", "65")
    expect(export.locator(".pct")).to_have_text("65%")
    expect(jobs.get_by_label("Search")).to_have_value("nightly")
    expect(page.locator("#view-jobs tbody tr")).to_have_count(1)
    export.get_by_role("link").click()  # a job's view, and back by the tab
    expect(page.locator("#job-title")).to_have_text("nightly export to S3")
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(jobs.get_by_label("State")).to_have_value("watching")
    expect(page.locator("#view-jobs tbody tr")).to_have_count(1)

    jobs.get_by_label("Search").fill("")
    jobs.get_by_label("State").select_option("")
    sim.set_job("AutoLabelQueue:page-0003", "IN_PROGRESS", 40)
    expect(job_row(page, "AutoLabelQueue:page-0003").locator("progress")).to_have_attribute(
        "value", "40"
    )
    expect(job_row(page, "ProjectCreation:page-0004")).to_contain_text("FAILED")
    jobs.get_by_label("Search").blur()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    # The README's picture: jobs in every state.
    page.screenshot(path=str(SCREENSHOT), clip={"x": 0, "y": 0, "width": 1280, "height": 400})

    sim.set_job("ExportQueue:page-0002", "DELIVERED", 100)
    expect(export).to_have_class(re.compile(r"\bstate-done\b"))
    expect(export).to_have_class(re.compile(r"\bfinished\b"))
    expect(export.locator("progress")).to_have_attribute("value", "100")
    assert tab.unexpected_errors() == [] and tab.dialogs == []


def test_a_dead_delivery_is_redelivered_with_a_click(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "ExportQueue:page-gone"
    stack.flaky.respond_with(410)  # Gone: dead at the first attempt
    stack.simulator.set_job(job_id, "DELIVERED", 100)
    stack.register(job_id, "export to a gone endpoint", notify=["flaky"])
    wait_until(lambda: [d["state"] for d in stack.deliveries(job_id)] == ["dead"], timeout=15)

    sign_in(page, WRITE_TOKEN)
    page.get_by_role("link", name="Callbacks").click()
    flaky = page.locator("#view-callbacks tbody tr").filter(has_text="flaky")
    expect(flaky.locator("td.col-dead")).to_have_text("1")
    expect(flaky.locator("td.col-error")).to_contain_text("HTTP 410")
    flaky.locator("td.col-dead a").click()  # the deliveries view, filtered
    filters = page.locator("#deliveries-filters")
    expect(filters.get_by_label("Callback")).to_have_value("flaky")
    expect(filters.get_by_label("State")).to_have_value("dead")
    row = delivery_row(page, job_id)
    expect(row).to_contain_text("dead")

    filters.get_by_label("State").select_option("")  # follow the row through its states
    stack.flaky.respond_with(200)
    row.get_by_role("button", name="Redeliver").click()
    stack.flaky.wait_for(lambda w: _for_job(w, job_id) and w.answered_status == 200)
    expect(row.locator(".badge")).to_have_text("delivered")
    expect(row.locator("td.col-attempts")).to_have_text("2")

    row.get_by_role("link", name=job_id).click()
    attempts = page.locator("#job-deliveries table.attempts tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("HTTP 410 Gone")
    expect(attempts.nth(0)).to_contain_text("failed")
    expect(attempts.nth(1)).to_contain_text("HTTP 200")
    expect(attempts.nth(1).locator("td").nth(1)).to_have_text(re.compile(r"^\d+ ms$"))
    assert tab.unexpected_errors() == [] and tab.dialogs == []


def _for_job(webhook: ReceivedWebhook, job_id: str) -> bool:
    return bool((webhook.json or {}).get("data", {}).get("job_id") == job_id)


def test_a_read_token_sees_but_cannot_redeliver_or_register(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "ExportQueue:page-read-only"
    stack.flaky.respond_with(410, count=1)
    stack.simulator.set_job(job_id, "DELIVERED", 100)
    stack.register(job_id, "read-only view", notify=["flaky"])
    wait_until(lambda: [d["state"] for d in stack.deliveries(job_id)] == ["dead"], timeout=15)

    sign_in(page, READ_TOKEN)
    expect(page.locator("#who")).to_have_text("dashboards (read)")
    page.get_by_role("link", name="Deliveries").click()
    button = delivery_row(page, job_id).get_by_role("button", name="Redeliver")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("may only read"))
    page.get_by_role("link", name="Register").click()
    expect(page.get_by_role("button", name="Register")).to_be_disabled()
    expect(page.locator("#register-readonly")).to_contain_text("needs a write token")
    assert [d["state"] for d in stack.deliveries(job_id)] == ["dead"]
    assert tab.unexpected_errors() == []


def test_a_wrong_token_says_so_and_sign_out_forgets_the_token(tab: Tab, stack: Stack) -> None:
    page = tab.page
    page.goto("/")
    page.get_by_label("API token").fill("not-the-token-" + "x" * 30)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("That token was not accepted")
    expect(page.get_by_role("link", name="Jobs")).to_be_hidden()
    assert page.evaluate("Object.keys(sessionStorage).length") == 0

    page.get_by_label("API token").fill(WRITE_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Jobs")).to_be_visible()
    page.reload()  # the tab remembers the token until sign-out
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#view-jobs tbody tr")).to_have_count(0)
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    assert tab.unexpected_errors(401) == []


def test_markup_in_names_and_ids_is_shown_as_text(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "Export:<script>alert(2)</script>"
    stack.simulator.set_job(job_id, "IN_PROGRESS", 10)
    stack.register(job_id, XSS, notify=["hook"])
    sign_in(page, WRITE_TOKEN)
    row = job_row(page, "Export:<script>")
    expect(row.locator("td.col-name")).to_have_text(XSS)
    expect(row.locator("td.col-id")).to_have_text(job_id)
    row.get_by_role("link").click()
    expect(page.locator("#job-title")).to_have_text(XSS)
    expect(page.locator("#job-id")).to_have_text(job_id)
    assert page.locator("main img, main script").count() == 0
    assert tab.dialogs == [] and tab.unexpected_errors() == []


def test_register_shows_the_api_errors_next_to_their_fields(tab: Tab, stack: Stack) -> None:
    page = tab.page
    sign_in(page, WRITE_TOKEN)
    page.get_by_role("link", name="Register").click()
    expect(page.locator("#reg-notify-hint")).to_contain_text("hook")
    page.get_by_role("button", name="Register").click()  # no id
    expect(page.locator("#reg-id-error")).to_contain_text("at least 1 character")
    expect(page.get_by_label("Job ID")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Job ID").fill("ExportQueue:page-registered")
    page.get_by_label("Name (optional)").fill("registered from the page")
    page.get_by_role("textbox", name="Callbacks").fill("hook, nope")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-notify-error")).to_contain_text("unknown callback 'nope'")
    expect(page.locator("#reg-id-error")).to_be_empty()

    page.get_by_role("textbox", name="Callbacks").fill("hook")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#register-result")).to_have_text("Registered ExportQueue:page-registered.")
    page.locator("#register-result a").click()
    expect(page.locator("#job-title")).to_have_text("registered from the page")
    assert tab.unexpected_errors(422) == []


def test_a_silence_added_on_the_page_holds_a_delivery_until_expired(
    tab: Tab,
    stack: Stack,
) -> None:
    page = tab.page
    job_id = "ExportQueue:page-silenced"
    sign_in(page, WRITE_TOKEN)
    page.get_by_role("link", name="Silences").click()
    view = page.locator("#view-silences")
    view.get_by_label("Callback").select_option("flaky")
    view.get_by_label("For").fill("1h")
    view.get_by_label("Comment").fill("redeploying flaky")
    view.get_by_role("button", name="Add silence").click()
    row = view.locator("tbody tr").filter(has_text="callback flaky")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("pipelines")
    expect(row).to_contain_text("redeploying flaky")

    stack.simulator.set_job(job_id, "DELIVERED", 100)
    stack.register(job_id, "held by a silence", notify=["flaky"])
    wait_until(lambda: [d["state"] for d in stack.deliveries(job_id)] == ["silenced"], timeout=15)
    page.get_by_role("link", name="Deliveries").click()
    expect(delivery_row(page, job_id).locator(".badge")).to_have_text("silenced")

    page.get_by_role("link", name="Silences").click()
    view.get_by_label("For").fill("soon")  # the API's refusal is shown by the form
    view.get_by_role("button", name="Add silence").click()
    expect(page.locator("#silence-error")).to_contain_text("for: not a duration")
    row.get_by_role("button", name="Expire").click()
    expect(row).to_contain_text("ended")
    expect(row.get_by_role("button", name="Expire")).to_be_hidden()
    stack.flaky.wait_for(lambda w: _for_job(w, job_id) and w.answered_status == 200)
    wait_until(lambda: [d["state"] for d in stack.deliveries(job_id)] == ["delivered"])
    assert tab.unexpected_errors(422) == [] and tab.dialogs == []


def test_a_read_token_sees_silences_but_cannot_add_or_expire(
    tab: Tab,
    stack: Stack,
) -> None:
    page = tab.page
    sign_in(page, READ_TOKEN)
    page.get_by_role("link", name="Silences").click()
    expect(
        page.locator("#view-silences").get_by_role("button", name="Add silence")
    ).to_be_disabled()
    assert tab.unexpected_errors() == []


def test_every_answer_of_the_listener_carries_the_security_headers(stack: Stack) -> None:
    anonymous = Client(stack.base, token=None)
    page = anonymous.call("GET", "/", allow_redirects=False)
    assert (page.status_code, page.headers["Location"]) == (302, "ui/")
    answers = {
        "/ui/": anonymous.call("GET", "/ui/"),
        "/ui/js/main.js": anonymous.call("GET", "/ui/js/main.js"),
        "/ui/style.css": anonymous.call("GET", "/ui/style.css"),
        "/ui/missing.js": anonymous.call("GET", "/ui/missing.js"),
        "/ui/js/missing.js": anonymous.call("GET", "/ui/js/missing.js"),
        "/ui/css/style.css": anonymous.call("GET", "/ui/css/style.css"),
        "/ui/js/..%2Findex.html": anonymous.call("GET", "/ui/js/..%2Findex.html"),
        "/ui/..%2Fapp.py": anonymous.call("GET", "/ui/..%2Fapp.py"),
        "/v1/jobs (no token)": anonymous.call("GET", "/v1/jobs"),
        "/v1/jobs": Client(stack.base).call("GET", "/v1/jobs"),
        "/v1/callbacks": Client(stack.base, READ_TOKEN).call("GET", "/v1/callbacks"),
    }
    statuses = {path: answer.status_code for path, answer in answers.items()}
    assert statuses == {
        "/ui/": 200,
        "/ui/js/main.js": 200,
        "/ui/style.css": 200,
        "/ui/missing.js": 404,
        "/ui/js/missing.js": 404,
        "/ui/css/style.css": 404,
        "/ui/js/..%2Findex.html": 404,
        "/ui/..%2Fapp.py": 404,
        "/v1/jobs (no token)": 401,
        "/v1/jobs": 200,
        "/v1/callbacks": 200,
    }
    for path, answer in [("/", page), *answers.items()]:
        csp = answer.headers.get("Content-Security-Policy", "")
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert answer.headers["Referrer-Policy"] == "no-referrer", path
    assert answers["/ui/js/main.js"].headers["Content-Type"].startswith("text/javascript")
    assert answers["/ui/"].headers["Content-Type"].startswith("text/html")
    # The page itself: no inline script or style, no handler attributes, nothing remote.
    html = answers["/ui/"].text
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="js/main.js">']
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=|https?://", html)
    for module in sorted((UI / "js").glob("*.js")):  # each served, none parsing HTML
        served = anonymous.call("GET", f"/ui/js/{module.name}")
        assert served.status_code == 200, module.name
        assert served.headers["Content-Type"].startswith("text/javascript"), module.name
        assert "innerHTML" not in served.text.replace("(no innerHTML)", ""), module.name
    callbacks = answers["/v1/callbacks"].json()["callbacks"]
    assert [c["name"] for c in callbacks][:2] == ["hook", "flaky"]
    assert set(callbacks[0]) == {
        "name", "type", "target", "pending", "dead", "paused", "consecutive_failures",
        "last_error",
    }  # fmt: skip
    for name in ("hook", "flaky"):
        only = Client(stack.base).call("GET", "/v1/deliveries", params={"callback": name})
        assert {d["callback"] for d in only.json()["deliveries"]} <= {name}


def test_demo_keep_serves_the_page_with_a_one_time_token_until_ctrl_c() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "notifier", "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
    reader.start()
    try:
        announced = wait_until(
            lambda: next((line for line in list(lines) if "Status page:" in line), None),
            timeout=15,
        )
        found = re.search(r"Status page: (\S+) \(token for this run only: (\S+)\)", announced)
        assert found, announced
        url, token = found.groups()
        wait_until(lambda: any("Press Ctrl-C" in line for line in list(lines)), timeout=30)
        whoami = requests.get(
            url + "v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert whoami.json() == {"name": "demo", "scope": "write"}
        assert requests.get(url, timeout=5).status_code == 200  # the page, after the redirect
        assert demo.poll() is None  # still up after the last notification
        # The commands it prints work against its config: a long job moves, and a job
        # registered now is made up by the simulator.
        text = "".join(lines)
        found = re.search(r"The demo's config: (\S+)\. Try", text)
        assert found, text
        config = found.group(1)
        assert f"datasaur-notifier -c {config} status" in text
        watched = run_cli(config, "watch", "ExportQueue:my-job")
        assert watched.returncode == 0, watched.stderr

        def progress(job_id: str) -> int:
            jobs = json.loads(run_cli(config, "status", "--json").stdout)["jobs"]
            return next(job["progress"] or 0 for job in jobs if job["id"] == job_id)

        wait_until(lambda: progress("ExportQueue:demo-0005") > 0, timeout=30)
        wait_until(lambda: progress("ExportQueue:my-job") > 0, timeout=30)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    reader.join(5)
    assert "Demo finished" in "".join(lines)


def run_cli(config: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notifier", "-c", config, *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_package_ships_every_file_of_the_page() -> None:
    root = Path(__file__).resolve().parent.parent
    with (root / "pyproject.toml").open("rb") as file:
        globs = tomllib.load(file)["tool"]["setuptools"]["package-data"]["notifier.api"]
    files = {p.relative_to(UI.parent).as_posix() for p in UI.rglob("*") if p.is_file()}
    shipped = {f for f in files if any(_globbed(f, g) for g in globs)}
    assert files - shipped == set(), f"add them to package-data: {sorted(files - shipped)}"


def _globbed(path: str, pattern: str) -> bool:
    """Whether setuptools' ``pattern`` takes ``path`` (``*`` stays within one folder)."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))
