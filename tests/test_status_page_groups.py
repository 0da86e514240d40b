"""The status page's Groups view (issue 21.2) in a real browser (Chromium): a group's
progress (members ended / total), counts, members, its deadline red once at risk, and
a click that opens Jobs filtered by the group. Uses test_status_page's daemon and browser.
"""

from __future__ import annotations

import re

from tests import test_status_page as page_tests
from tests.test_api_e2e import WRITE_TOKEN, Client
from tests.test_status_page import Stack, Tab, expect, sign_in

browser, stack, tab = page_tests.browser, page_tests.stack, page_tests.tab


def test_the_groups_view_shows_progress_counts_members_and_filters_jobs(
    tab: Tab, stack: Stack
) -> None:
    page, sim = tab.page, stack.simulator
    done, slow = "ExportQueue:page-group-done", "ExportQueue:page-group-slow"
    sim.set_job(done, "DELIVERED", 100)
    sim.script_job(slow, [(0.4 * i, "IN_PROGRESS", 1 + i) for i in range(90)])  # ~40 s
    client = Client(stack.base)
    answer = client.call("PUT", "/v1/groups/page-run", json={
        "name": "Page run", "expect": 2, "deadline": "25s", "notify": ["hook"]})  # fmt: skip
    assert answer.status_code == 201, answer.text
    for job_id in (done, slow):
        assert client.call("POST", "/v1/jobs", json={"id": job_id, "group": "page-run",
                                                     "notify": []}).ok  # fmt: skip
    sign_in(page, WRITE_TOKEN)
    page.get_by_role("link", name="Groups").click()
    row = page.locator('#groups-table tr[data-key="page-run"]')
    expect(row.locator(".col-progress .pct")).to_have_text("1/2", timeout=20_000)
    expect(row.locator(".col-counts")).to_have_text("1 delivered, 1 running")
    expect(row.locator(".col-members a")).to_have_count(2)
    expect(row.locator(".col-state .badge")).to_have_text("sealed")
    expect(row.locator(".col-deadline")).to_have_class(re.compile(r"\blate\b"), timeout=20_000)
    expect(row.locator(".col-deadline")).to_contain_text("at risk")
    red = row.locator(".col-deadline").evaluate("node => getComputedStyle(node).color")
    assert red != row.locator(".col-name").evaluate("node => getComputedStyle(node).color")
    row.locator(".col-name").click()
    expect(page).to_have_url(re.compile(r"#/jobs\?group=page-run$"))
    expect(page.locator("#jobs-group")).to_have_value("page-run")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(2)
    assert tab.unexpected_errors() == [] and tab.dialogs == []
