"""The alerts screen (issue 11 screen 8) in Debian's chromium against a real `b2c up --demo` stack: the critical
banner on every screen, the active list live through `alertTriggered`, acknowledge / silence / resolve for an
operator and their reasons for a viewer, the history's filters, the detail with episodes and notification
attempts, silences with expire, and the e-mails' `/#/alerts/<id>` links; axe-core in every state."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from b2x.monitoring.v1 import jobs_pb2

from tests.dashboard.conftest import Dashboard, T, axe_violations, screenshot

pytestmark = pytest.mark.e2e
OPEN = 15_000
ALERTS = (
    "query($f: AlertFilter) { alerts(filter: $f, first: 50) { nodes { id rule severity status summary jobType "
    "acknowledgedBy acknowledgeComment silencedBy } } }"
)


async def _no_violations(page: Any, context: str) -> None:
    violations = await axe_violations(page, context)
    assert violations == [], violations


async def _fail_jobs(dashboard: Dashboard, job_type: str, count: int) -> None:
    for _ in range(count):
        job_id = await dashboard.running_job(job_type)
        await dashboard.jobs.FailJob(
            jobs_pb2.FailJobRequest(worker_id="ui-test", job_id=job_id, error_message="ERP refused the batch"),
            timeout=T,
        )


async def _alerts_of(dashboard: Dashboard, job_type: str, want: int = 2) -> dict[str, dict[str, Any]]:
    """The job type's alerts by rule, once `want` rules fired (the failure rate and the failed job)."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(120):
        nodes = (await dashboard.graphql(dashboard.operator, ALERTS, {"f": {"active": True}}))["data"]["alerts"][
            "nodes"
        ]
        found = {a["rule"]: a for a in nodes if a["jobType"] == job_type}
        if len(found) >= want:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"no alerts for {job_type}: {found}")


async def test_alerts_fire_live_into_the_list_and_banner_and_an_operator_acknowledges_silences_and_resolves(
    open_page: Any, dashboard: Dashboard
) -> None:
    job_type = f"UI_ALERT_{uuid.uuid4().hex[:6].upper()}"
    page = await open_page(dashboard.operator, "/alerts")
    await page.wait_for_selector("section[data-ready=true] [data-testid=active-alerts]", timeout=OPEN)
    await _no_violations(page, "alerts screen")

    # Six failures of one type and tenant: jobs.failed (error) and jobs.failure_rate (critical) fire; the list and
    # the banner show them live, without a reload.
    await _fail_jobs(dashboard, job_type, 6)
    alerts = await _alerts_of(dashboard, job_type)
    critical, failed = alerts["jobs.failure_rate"], alerts["jobs.failed"]
    assert critical["severity"] == "CRITICAL"
    row = page.locator(f"[data-testid=active-alerts] tr[data-alert-id='{critical['id']}']")
    await row.wait_for(timeout=OPEN)
    assert await row.get_attribute("data-severity") == "CRITICAL"
    assert job_type in await row.text_content()
    banner = page.get_by_role("alert").filter(has_text="Critical")
    await banner.get_by_role("link", name=critical["summary"]).wait_for(timeout=OPEN)
    assert re.fullmatch(r"\d+ firing", (await page.get_by_test_id("firing-count").text_content()).strip())
    # The history follows too (refetched at most every 2 s after live changes).
    history = "[data-testid=alert-history] tr[data-alert-id='{}']"
    for alert in (critical, failed):
        await page.wait_for_selector(history.format(alert["id"]), timeout=OPEN)
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=firing-count]')?.textContent.trim() === "
        "`${document.querySelectorAll('[data-testid=active-alerts] tr[data-state=FIRING]').length} firing`",
        timeout=OPEN,
    )
    await _no_violations(page, "alerts screen with firing alerts")
    await screenshot(page, "alerts", full_page=True)

    # The banner is on every screen and links to the alert.
    await page.get_by_role("link", name="Services").click()
    await page.wait_for_url(re.compile(r"/services$"))
    await banner.get_by_role("link", name=critical["summary"]).click()
    await page.wait_for_url(re.compile(rf"/alerts/{critical['id']}$"))
    detail = page.get_by_test_id("alert-detail")
    await detail.wait_for(timeout=OPEN)
    assert await detail.get_by_test_id("alert-episodes").locator("tbody tr").count() >= 1
    await _no_violations(page, "alert detail")
    await page.keyboard.press("Escape")
    await page.wait_for_url(re.compile(r"/alerts$"))

    # Acknowledge with a comment, by keyboard.
    ack = row.get_by_role("button", name=f"Acknowledge {critical['summary']}")
    await ack.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Acknowledge this alert?")
    await dialog.get_by_test_id("ack-comment").fill("looking at the ERP batch")
    await _no_violations(page, "acknowledge dialog")
    await page.keyboard.press("Enter")
    await dialog.wait_for(state="detached", timeout=OPEN)
    await page.wait_for_selector(f"tr[data-alert-id='{critical['id']}'][data-state=ACKNOWLEDGED]", timeout=OPEN)
    now = (await dashboard.graphql(dashboard.operator, ALERTS, {"f": {"active": True}}))["data"]["alerts"]["nodes"]
    acked = next(a for a in now if a["id"] == critical["id"])
    assert acked["status"] == "ACKNOWLEDGED" and acked["acknowledgeComment"] == "looking at the ERP batch"
    assert acked["acknowledgedBy"].startswith("ui operator")

    # Silence the failed-job alert: matchers come from its labels.
    failed_row = page.locator(f"[data-testid=active-alerts] tr[data-alert-id='{failed['id']}']")
    # Its summary names the latest failed job, which may have changed since it was read: the row is found by id.
    await failed_row.get_by_role("button", name=re.compile(r"^Silence ")).click()
    dialog = page.get_by_role("dialog", name="Silence notifications")
    matchers = (await dialog.get_by_test_id("silence-matchers").input_value()).splitlines()
    assert "rule=jobs.failed" in matchers and f"job_type={job_type}" in matchers
    await dialog.get_by_test_id("silence-duration").select_option("1h")
    await dialog.get_by_test_id("silence-comment").fill("ERP maintenance")
    await _no_violations(page, "silence dialog")
    await screenshot(page, "alert-silence-dialog")
    await dialog.get_by_role("button", name="Create silence").click()
    await dialog.wait_for(state="detached", timeout=OPEN)
    silence = page.locator("[data-testid=silences] tr[data-active=true]", has_text=f"job_type={job_type}")
    await silence.wait_for(timeout=OPEN)
    assert "ERP maintenance" in await silence.text_content()
    await _no_violations(page, "alerts screen with a silence")
    await silence.get_by_role("button", name=re.compile("^Expire")).click()
    await silence.wait_for(state="detached", timeout=OPEN)

    # Resolve: the alert leaves the active list and the history's "Resolved" filter shows it.
    await row.get_by_role("button", name=f"Resolve {critical['summary']}").click()
    dialog = page.get_by_role("dialog", name="Resolve this alert?")
    await dialog.get_by_role("button", name="Resolve").click()
    await row.wait_for(state="detached", timeout=OPEN)
    await page.get_by_role("checkbox", name="Resolved").check()
    await page.wait_for_url(re.compile(r"state=RESOLVED"))
    # The history says which filter its rows answer: wait for the resolved ones, not the rows shown before.
    shown = "[data-testid=alert-history][data-shows='state=RESOLVED'][aria-busy=false]"
    await page.wait_for_selector(f"{shown} tr[data-alert-id='{critical['id']}'][data-state=RESOLVED]", timeout=OPEN)
    assert await page.locator("[data-testid=alert-history] tr[data-state=FIRING]").count() == 0
    await _no_violations(page, "alert history filtered")
    assert page.watch.errors == [], page.watch.errors


async def test_a_notification_link_opens_the_alert_with_its_episodes_and_notification_attempts(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The e-mails link to `http://<gateway>/#/alerts/<id>`; the app (history routing) opens `/alerts/<id>`."""
    job_type = f"UI_NOTIFY_{uuid.uuid4().hex[:6].upper()}"
    await _fail_jobs(dashboard, job_type, 1)
    failed = (await _alerts_of(dashboard, job_type, want=1))["jobs.failed"]
    query = "query($id: ID!) { alert(id: $id) { notifications { channel status } } }"
    notifications: list[dict[str, Any]] = []
    for _ in range(200):  # the demo routes every alert to its inbox, grouped by rule (10 s wait, 1 min interval)
        notifications = (await dashboard.graphql(dashboard.operator, query, {"id": failed["id"]}))["data"]["alert"][
            "notifications"
        ]
        if notifications:
            break
        await asyncio.sleep(0.5)
    assert notifications, "the demo sent no notification"

    page = await open_page(dashboard.viewer, f"/#/alerts/{failed['id']}")
    await page.wait_for_url(re.compile(rf"/alerts/{failed['id']}$"))
    detail = page.get_by_test_id("alert-detail")
    await detail.wait_for(timeout=OPEN)
    rows = detail.get_by_test_id("alert-notifications").locator("tbody tr")
    assert await rows.count() >= len(notifications)
    assert {n["channel"] for n in notifications} <= set(
        await rows.evaluate_all("rows => rows.map(r => r.dataset.channel)")
    )
    await _no_violations(page, "alert detail opened from a notification link")
    await screenshot(page, "alert-detail")

    # A viewer sees the actions disabled with the reason, and nothing happens on a click.
    button = detail.get_by_role("button", name=f"Acknowledge {failed['summary']}")
    assert await button.get_attribute("aria-disabled") == "true"
    reason = await page.locator(f"#{await button.get_attribute('aria-describedby')}").text_content()
    assert "Needs the operator role" in reason
    await button.click(force=True)
    assert await page.get_by_role("dialog", name="Acknowledge this alert?").count() == 0
    await page.keyboard.press("Escape")
    await page.wait_for_url(re.compile(r"/alerts$"))
    await page.wait_for_selector("section[data-ready=true] [data-testid=active-alerts]", timeout=OPEN)
    assert "Needs the operator role" in await page.get_by_test_id("alerts-why").text_content()
    silence = page.locator(f"tr[data-alert-id='{failed['id']}']").first.get_by_role(
        "button", name=re.compile("^Silence")
    )
    assert await silence.get_attribute("aria-disabled") == "true"
    await _no_violations(page, "alerts screen for a viewer")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(300)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the alerts screen is {overflow} px wider than a phone"
    await _no_violations(page, "alerts screen on a phone")
    assert page.watch.errors == [], page.watch.errors
