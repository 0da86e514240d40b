"""The status page at a glance and on a small screen, in a real browser (Chromium).

Outcomes (a failed or expired job is not green), Datasaur's errors in a job's detail,
unwatching from it, redelivering several deliveries (asked first), the Callbacks view's
targets and lane state, and every table at 420 px wide. Uses test_status_page's daemon
and browser; the outcome test runs a daemon of its own that expires jobs after a few
seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_status_page as page_tests
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, write_config
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, WRITE_TOKEN, Client, api_section, free_port
from tests.test_status_page import Stack, Tab, delivery_row, expect, job_row, sign_in

# test_status_page's fixtures: its browser, and a daemon of this module's own.
browser, stack, tab = page_tests.browser, page_tests.stack, page_tests.tab

FAILURE = {
    "id": "ProjectCreation:outcome-failed:error:1",
    "stack": "Error: labeler crashed\n    at run (worker.js:12:7)\n    at main (worker.js:3:1)",
    "args": {},
}


def job_state(base: str, job_id: str) -> str:
    answer = Client(base).call("GET", "/v1/jobs/" + job_id)
    return str(answer.json()["job"]["state"])


@pytest.fixture
def expiring(tmp_path: Path, stack: Stack) -> Iterator[str]:
    """A second daemon, on the same simulator, that expires a job 3 s after it is watched."""
    port = free_port()
    config = base_config(
        stack.simulator,
        tmp_path,
        callbacks={"hook": webhook(stack.hook)},
        api=api_section(port),
        polling={"interval": "0.2s", "max_interval": "0.5s", "expire_after": "3s"},
    )
    daemon = DaemonProcess(write_config(tmp_path / "config.yaml", config)).start()
    try:
        daemon.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.output


def background(locator: Any) -> str:
    return str(locator.evaluate("node => getComputedStyle(node).backgroundColor"))


def test_failed_and_expired_jobs_are_not_green_and_errors_show_in_the_detail(
    tab: Tab, expiring: str, stack: Stack
) -> None:
    page, sim = tab.page, stack.simulator
    sim.set_job("AutoLabelQueue:outcome-delivered", "DELIVERED", 100)
    sim.set_job("ProjectCreation:outcome-failed", "FAILED", 0, errors=[FAILURE])
    sim.set_job("ExportQueue:outcome-expired", "IN_PROGRESS", 10)
    client = Client(expiring)
    for job_id in ("AutoLabelQueue:outcome-delivered", "ProjectCreation:outcome-failed"):
        assert client.call("POST", "/v1/jobs", json={"id": job_id}).status_code == 201
    assert client.call("POST", "/v1/jobs", json={"id": "ExportQueue:outcome-expired"}).ok
    wait_until(lambda: job_state(expiring, "ExportQueue:outcome-expired") == "expired", 20)

    page.goto(expiring + "/")
    page.get_by_label("API token").fill(WRITE_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    badges = {
        name: job_row(page, job_id).locator("td.col-state .badge")
        for name, job_id in [
            ("delivered", "AutoLabelQueue:outcome-delivered"),
            ("failed", "ProjectCreation:outcome-failed"),
            ("expired", "ExportQueue:outcome-expired"),
        ]
    }
    for name, badge in badges.items():
        expect(badge).to_have_text(name)
    colours = {name: background(badge) for name, badge in badges.items()}
    assert colours["failed"] != colours["delivered"], colours
    assert colours["expired"] != colours["delivered"], colours
    assert colours["expired"] != colours["failed"], colours
    failed_row = job_row(page, "ProjectCreation:outcome-failed")
    error_cell = failed_row.locator("td.col-error")
    expect(error_cell).to_have_text("Error: labeler crashed")  # the id: in its title
    expect(error_cell).to_have_attribute("title", f"{FAILURE['id']}: Error: labeler crashed")

    failed_row.get_by_role("link").click()
    errors = page.locator("#job-errors")
    expect(errors).to_be_visible()
    expect(errors.locator("code")).to_have_text(FAILURE["id"])
    expect(errors.locator("pre")).to_have_text(FAILURE["stack"])  # the whole stack, as text
    expect(page.locator("#job-fields .badge")).to_have_text("failed")
    page.get_by_role("link", name="Jobs", exact=True).click()
    job_row(page, "AutoLabelQueue:outcome-delivered").get_by_role("link").click()
    expect(page.locator("#job-fields .badge")).to_have_text("delivered")
    expect(page.locator("#job-errors")).to_be_hidden()
    assert tab.unexpected_errors() == [] and tab.dialogs == []


def test_a_job_is_unwatched_from_its_detail(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "ExportQueue:page-unwatch"
    stack.simulator.set_job(job_id, "IN_PROGRESS", 30)
    stack.register(job_id, "to be unwatched", notify=["hook"])
    sign_in(page, READ_TOKEN)
    page.goto(f"/ui/#/job/{job_id}")
    button = page.get_by_role("button", name="Unwatch")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("may only read"))
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, WRITE_TOKEN)
    page.goto(f"/ui/#/job/{job_id}")
    expect(page.locator("#job-fields .badge")).to_have_text("watching")
    page.get_by_role("button", name="Unwatch").click()
    expect(page.locator("#job-fields .badge")).to_have_text("unwatched")
    expect(page.get_by_role("button", name="Unwatch")).to_be_hidden()
    assert job_state(stack.base, job_id) == "unwatched"
    assert tab.unexpected_errors() == [] and tab.dialogs == []


def test_redelivering_several_deliveries_asks_first(tab: Tab, stack: Stack) -> None:
    page = tab.page
    ids = [f"ExportQueue:page-bulk-{n}" for n in range(3)]
    stack.flaky.respond_with(410, count=3)  # each dead at its first attempt
    for job_id in ids:
        stack.simulator.set_job(job_id, "DELIVERED", 100)
        stack.register(job_id, "bulk", notify=["flaky"])
    for job_id in ids:
        wait_until(lambda j=job_id: [d["state"] for d in stack.deliveries(j)] == ["dead"], 15)
    stack.flaky.respond_with(200)

    sign_in(page, WRITE_TOKEN)
    page.goto("/ui/#/deliveries?state=dead&callback=flaky")
    bulk = page.locator("#deliveries-redeliver")
    expect(bulk).to_be_disabled()
    for job_id in ids[:2]:
        delivery_row(page, job_id).get_by_role("checkbox").check()
    expect(bulk).to_have_text("Redeliver 2 selected")
    bulk.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Send 2 deliveries again?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert [stack.deliveries(j)[0]["state"] for j in ids] == ["dead"] * 3

    bulk.click()
    dialog.get_by_role("button", name="Redeliver 2").click()
    for job_id in ids[:2]:
        wait_until(lambda j=job_id: stack.deliveries(j)[0]["state"] == "delivered", 15)
    assert stack.deliveries(ids[2])[0]["state"] == "dead"
    expect(delivery_row(page, ids[0])).to_have_count(0)  # no longer dead: out of the filter

    delivery_row(page, ids[2]).get_by_role("checkbox").check()
    expect(bulk).to_have_text("Redeliver 1 selected")
    bulk.click()  # one: no question
    wait_until(lambda: stack.deliveries(ids[2])[0]["state"] == "delivered", 15)
    assert tab.unexpected_errors() == [] and tab.dialogs == []


def test_the_callbacks_view_shows_each_host_and_whether_its_lane_runs(
    tab: Tab, stack: Stack
) -> None:
    page = tab.page
    sign_in(page, READ_TOKEN)
    page.get_by_role("link", name="Callbacks").click()
    table = page.locator("#callbacks-table")
    headers = table.locator("thead th").all_inner_texts()
    hook = table.locator("tbody tr").filter(has_text="hook").first
    expect(hook.locator("td.col-target")).to_have_text(f"webhook → 127.0.0.1:{stack.hook.port}")
    cells = hook.locator("td").all_inner_texts()
    assert cells[headers.index("State")] == "running"
    assert cells[headers.index("Points at")] == f"webhook → 127.0.0.1:{stack.hook.port}"
    assert "/hook" not in table.inner_text()
    assert tab.unexpected_errors() == []


NARROW = 420
MIN_CHARACTERS = 3  # every column: never one character wide
WIDE_COLUMNS = {"ID": 12, "Webhook ID": 12, "Job": 12, "Name": 10, "Last error": 12}


def column_widths(page: Any, table: str) -> dict[str, float]:
    """Each column's content width in characters ("0" of its header's font), by header."""
    return dict(
        page.evaluate(
            """table => Array.from(document.querySelectorAll(`${table} thead th`))
                .filter(th => !th.classList.contains("col-select"))
                .map(th => {
                    const probe = document.createElement("span");
                    probe.textContent = "0".repeat(10);
                    th.append(probe);
                    const char = probe.getBoundingClientRect().width / 10;
                    probe.remove();
                    const style = getComputedStyle(th);
                    const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
                    const width = th.getBoundingClientRect().width - padding;
                    return [th.innerText.trim() || "actions", Math.round(10 * width / char) / 10];
                })""",
            table,
        )
    )


def test_every_table_stays_readable_420_px_wide(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "AutoLabelQueue:narrow-0123456789abcdef-0123456789abcdef"
    stack.simulator.set_job(job_id, "FAILED", 40, errors=[FAILURE])
    stack.register(job_id, "a job with a long name to wrap on a phone", notify=["hook"])
    wait_until(lambda: stack.deliveries(job_id), 15)
    client, member = Client(stack.base), "AutoLabelQueue:narrow-member-0123456789abcdef"
    stack.simulator.set_job(member, "IN_PROGRESS", 40)
    client.call("PUT", "/v1/groups/narrow-run-0123456789", json={"name": "a narrow run"})
    client.call("POST", "/v1/jobs", json={"id": member, "group": "narrow-run-0123456789"})
    page.set_viewport_size({"width": NARROW, "height": 800})
    sign_in(page, WRITE_TOKEN)
    views = {
        "#jobs-table": ("Jobs", job_row(page, job_id)),
        "#deliveries-table": ("Deliveries", delivery_row(page, job_id)),
        "#callbacks-table": ("Callbacks", page.locator("#callbacks-table tbody tr").first),
        "#groups-table": (
            "Groups",
            page.locator('#groups-table tr[data-key="narrow-run-0123456789"]'),
        ),
    }
    measured = {}
    for table, (link, row) in views.items():
        page.get_by_role("link", name=link, exact=True).click()
        expect(row).to_be_visible()
        widths = column_widths(page, table)
        measured[table] = widths
        # Nothing sticks out of the page: a wide table scrolls inside its frame.
        assert page.evaluate("document.documentElement.scrollWidth") <= NARROW, table
        narrow = {
            name: width
            for name, width in widths.items()
            if width < WIDE_COLUMNS.get(name, MIN_CHARACTERS)
        }
        assert narrow == {}, (table, widths)
    page.get_by_role("link", name="Jobs", exact=True).click()
    job_row(page, job_id).get_by_role("link").click()  # its detail: the attempt log too
    expect(page.locator("#job-deliveries table.attempts tbody tr")).to_have_count(1)
    measured["attempts"] = widths = column_widths(page, "#job-deliveries table.attempts")
    assert min(widths.values()) >= MIN_CHARACTERS, widths
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW
    print("\n" + "\n".join(f"{t}: {w}" for t, w in measured.items()))
    assert tab.unexpected_errors() == []


def test_register_shows_every_problem_of_the_form_at_once(tab: Tab, stack: Stack) -> None:
    page = tab.page
    sign_in(page, WRITE_TOKEN)
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Job ID").fill("   ")
    page.get_by_role("textbox", name="Callbacks").fill("hook, nope")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-id-error")).to_contain_text("must not be blank")
    expect(page.locator("#reg-notify-error")).to_contain_text("unknown callback 'nope'")
    expect(page.get_by_label("Job ID")).to_have_attribute("aria-invalid", "true")
    assert tab.unexpected_errors(422) == []


def test_a_failed_job_is_acknowledged_from_its_detail(tab: Tab, stack: Stack) -> None:
    page = tab.page
    job_id = "ProjectCreation:page-ack"
    stack.simulator.set_job(job_id, "FAILED", 0, errors=[FAILURE])
    stack.register(job_id, "to be acknowledged", notify=["hook"])
    wait_until(lambda: job_state(stack.base, job_id) == "done", 20)
    sign_in(page, READ_TOKEN)
    page.goto(f"/ui/#/job/{job_id}")
    button = page.get_by_role("button", name="Acknowledge")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("may only read"))
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, WRITE_TOKEN)
    page.goto(f"/ui/#/job/{job_id}")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#job-fields")).to_contain_text("Acknowledged")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_hidden()
    ack = Client(stack.base).call("GET", "/v1/jobs/" + job_id).json()["job"]["ack"]
    assert ack["by"] == "pipelines" and ack["comment"] is None
    assert tab.unexpected_errors() == [] and tab.dialogs == []
