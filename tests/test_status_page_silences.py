"""The status page's Silences view in a real browser: add a silence with the form, see
the callback's delivery held, expire it with the button, see the delivery go out."""

from __future__ import annotations

from notifier.standins.receiver import ReceivedWebhook
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, WRITE_TOKEN
from tests.test_status_page import (  # noqa: F401 (fixtures)
    Stack,
    Tab,
    browser,
    delivery_row,
    expect,
    sign_in,
    stack,
    tab,
)


def _for_job(webhook: ReceivedWebhook, job_id: str) -> bool:
    return bool((webhook.json or {}).get("data", {}).get("job_id") == job_id)


def test_a_silence_added_on_the_page_holds_a_delivery_until_expired(
    tab: Tab,
    stack: Stack,  # noqa: F811
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
    stack: Stack,  # noqa: F811
) -> None:
    page = tab.page
    sign_in(page, READ_TOKEN)
    page.get_by_role("link", name="Silences").click()
    expect(page.locator("#view-silences").get_by_role("button", name="Add silence")).to_be_disabled()
    assert tab.unexpected_errors() == []
