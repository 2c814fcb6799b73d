"""The dashboard in Debian's chromium against a real `b2c up --demo` stack: each screen with real data,
the job table's filters, sort, pages and URL, the detail panel's actions, roles, keyboard and axe-core."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pytest
from b2x.monitoring.v1 import jobs_pb2

from tests.dashboard.conftest import Dashboard, T, axe_violations, screenshot

pytestmark = pytest.mark.e2e
OPEN = 15_000  # ms a screen may take on a busy 2-core CI machine


async def _no_violations(page: Any, context: str) -> None:
    violations = await axe_violations(page, context)
    assert violations == [], violations


async def test_the_sign_in_link_signs_in_for_the_tab_only_and_a_bad_key_is_refused(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The link from `b2c up` signs in and vanishes from the address bar; the key sits in sessionStorage, never
    localStorage; a wrong key gets a clear message; the sign-in page passes axe."""
    page = await open_page()
    await page.goto(dashboard.link)
    await page.wait_for_selector("[data-testid=who]", timeout=OPEN)
    assert "#key=" not in page.url and "b2x_" not in page.url
    assert await page.evaluate("sessionStorage.getItem('b2x.apiKey')") == dashboard.stack.admin_key
    assert await page.evaluate("localStorage.length") == 0
    assert "admin" in await page.text_content("[data-testid=who]")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector("#api-key")
    assert await page.evaluate("sessionStorage.getItem('b2x.apiKey')") is None
    await page.fill("#api-key", "b2x_aaaaaaaaaaaa_" + "x" * 32)
    await page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "not valid" in await alert.text_content()
    await _no_violations(page, "sign-in with error")
    await screenshot(page, "sign-in")

    await page.fill("#api-key", dashboard.viewer)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("[data-testid=who]")
    assert "viewer" in await page.text_content("[data-testid=who]")
    assert page.watch.errors == [] or all("401" in e for e in page.watch.errors), page.watch.errors


async def test_the_overview_shows_the_stacks_real_health_trend_and_figures(
    open_page: Any, dashboard: Dashboard
) -> None:
    """Status cards name every connected service with colour, icon and text; the figures are the API's; the four
    trend charts have a text summary and a table; no request leaves the gateway; axe finds nothing, on a
    desktop, a tablet and a phone."""
    summary = (
        await dashboard.graphql(
            dashboard.operator,
            "{ healthSummary { components { slug name } } jobTrend(days: 7) { total { finished } } }",
        )
    )["data"]
    page = await open_page(dashboard.operator)
    await page.wait_for_selector("section[data-ready=true] .health-card", timeout=OPEN)
    for component in summary["healthSummary"]["components"]:
        card = page.locator(f"li[data-service='{component['slug']}']")
        assert await card.locator("h3").text_content() == component["name"]
        assert re.search(r"Healthy|Degraded|Unhealthy|Unknown", await card.locator(".badge").text_content())
    assert re.fullmatch(r"[\d,.]+", (await page.text_content("[data-testid=metric-active]")).strip())
    charts = page.locator("figure.chart")
    assert await charts.count() == 4
    assert "jobs finished in 7 days" in await charts.nth(0).locator(".chart-summary").text_content()
    assert await charts.nth(0).locator("canvas").get_attribute("role") == "img"
    await charts.nth(0).get_by_text("Show the figures as a table").click()
    rows = charts.nth(0).locator("tbody tr")
    assert await rows.count() == 7
    await _no_violations(page, "overview with a chart table open")
    await screenshot(page, "overview", full_page=True)
    assert page.watch.foreign == [], page.watch.foreign
    assert page.watch.errors == [], page.watch.errors

    # Quick action: failed jobs of the last 24 h that nobody retried get a new attempt, after a confirmation.
    failed = await dashboard.running_job(f"UI_BULK_{uuid.uuid4().hex[:6].upper()}")
    await dashboard.jobs.FailJob(
        jobs_pb2.FailJobRequest(worker_id="ui-test", job_id=failed, error_message="CRM token expired"), timeout=T
    )
    await page.get_by_role("button", name="Retry failed jobs (24 h)…").click()
    dialog = page.get_by_role("dialog", name="Retry failed jobs?")
    await _no_violations(page, "overview with the bulk retry dialog")
    await dialog.get_by_role("button", name="Retry failed jobs").click()
    await page.locator(".notice", has_text=re.compile(r"\d+ failed jobs? retried")).wait_for(timeout=OPEN)
    attempts = (await dashboard.jobs.GetJobDetails(jobs_pb2.GetJobDetailsRequest(job_id=failed), timeout=T)).attempts
    assert len(attempts) == 2 and attempts[1].created_by.startswith("ui operator")

    for width, height, name in ((900, 1100, "tablet"), (390, 844, "mobile")):
        await page.set_viewport_size({"width": width, "height": height})
        await page.wait_for_timeout(300)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the overview is {overflow} px wider than a {name}"
        await _no_violations(page, f"overview on a {name}")
        if name == "mobile":
            await screenshot(page, "overview-mobile", full_page=True)


async def test_the_gateway_serves_the_app_with_a_strict_policy_and_cached_hashed_assets(dashboard: Dashboard) -> None:
    """/ and app paths answer with index.html under a CSP without inline or remote sources; /assets/ files are
    immutable for a year; GraphiQL still answers at /graphql."""
    import httpx

    async with httpx.AsyncClient(timeout=T) as http:
        for path in ("/", "/jobs", "/jobs/" + str(uuid.uuid4()), "/sign-in"):
            page = await http.get(dashboard.url + path)
            assert page.status_code == 200 and '<div id="app">' in page.text
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "http" not in csp
            assert page.headers["cache-control"] == "no-cache"
        script = re.search(r'src="(/assets/[^"]+\.js)"', (await http.get(dashboard.url + "/")).text)
        assert script is not None
        asset = await http.get(dashboard.url + script.group(1))
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        missing = await http.get(dashboard.url + "/assets/nope-123.js")
        assert missing.status_code == 404
        ide = await http.get(dashboard.url + "/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()


async def test_filters_sort_and_pages_live_in_the_url_and_the_export_holds_every_row(
    open_page: Any, dashboard: Dashboard
) -> None:
    """30 jobs of one type: pages of 25 with Next and the back button, sort by ID both ways, a status filter, a
    reload that keeps it all, and a CSV export with all 30 rows."""
    job_type = f"UI_PAGING_{uuid.uuid4().hex[:6].upper()}"
    ids = sorted([await dashboard.queued_job(job_type) for _ in range(30)])
    for job_id in ids[:3]:
        await dashboard.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id, reason="ui test"), timeout=T)

    page = await open_page(dashboard.operator, f"/jobs?type={job_type}&size=25")
    rows = page.locator("tr.job-row")
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 25", timeout=OPEN)
    assert (await page.text_content("[data-testid=row-range]")).strip() == "Jobs 1\u201325 of 30"
    await page.get_by_role("button", name="Next page").click()
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 5")
    assert "after=" in page.url and f"type={job_type}" in page.url
    assert (await page.text_content("[data-testid=row-range]")).strip() == "Jobs 26\u201330 of 30"
    await page.go_back()
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 25")

    await page.get_by_role("button", name=re.compile(r"^ID")).click()
    await page.wait_for_url(re.compile(r"sort=ID"))
    await page.wait_for_function(f"() => document.querySelector('tr.job-row')?.dataset.jobId === '{ids[-1]}'")
    assert await page.locator("th[aria-sort=descending]").text_content() is not None
    await page.get_by_role("button", name=re.compile(r"^ID")).click()
    await page.wait_for_url(re.compile(r"dir=ASC"))
    await page.wait_for_function(f"() => document.querySelector('tr.job-row')?.dataset.jobId === '{ids[0]}'")
    assert await page.locator("th[aria-sort=ascending] button").text_content() is not None

    await page.get_by_role("checkbox", name=re.compile(r"^Cancelled")).check()
    await page.wait_for_url(re.compile(r"status=CANCELLED"))
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 3")
    await page.reload()
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 3", timeout=OPEN)
    assert await page.get_by_role("checkbox", name=re.compile(r"^Cancelled")).is_checked()
    assert [await rows.nth(i).get_attribute("data-job-id") for i in range(3)] == sorted(ids[:3])
    await _no_violations(page, "job table filtered")

    await page.get_by_role("checkbox", name=re.compile(r"^Cancelled")).uncheck()
    await page.wait_for_function("() => document.querySelectorAll('tr.job-row').length === 25")
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name=re.compile("Export CSV")).click()
    download = await download_info.value
    text = (await download.path()).read_text(encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["id"] for r in exported) == ids
    assert {r["job_type"] for r in exported} == {job_type}
    assert download.suggested_filename.startswith("jobs-") and download.suggested_filename.endswith(".csv")


async def test_the_detail_panel_shows_the_job_and_retry_and_cancel_ask_first(
    open_page: Any, dashboard: Dashboard
) -> None:
    """Cancel asks for confirmation and cancels; Retry makes attempt 2, which the panel opens; a refusal shows the
    server's message; Escape closes dialog and panel; axe passes with the panel and with a dialog open."""
    job_type = f"UI_DETAIL_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.queued_job(job_type)
    page = await open_page(dashboard.operator, f"/jobs?type={job_type}")
    await page.locator(f"tr[data-job-id='{job_id}'] button").click()
    detail = page.locator("[data-testid=job-detail]")
    await detail.wait_for(timeout=OPEN)
    assert f"/jobs/{job_id}" in page.url and f"type={job_type}" in page.url
    assert await detail.get_attribute("data-status") == "QUEUED"
    assert await page.get_by_role("button", name="Retry").get_attribute("aria-disabled") == "true"
    await _no_violations(page, "detail panel")

    await page.get_by_role("button", name="Cancel job").click()
    dialog = page.get_by_role("dialog", name="Cancel this job?")
    await dialog.wait_for()
    await dialog.get_by_label(re.compile("Reason")).fill("wrong catalog")
    await _no_violations(page, "cancel dialog")
    await screenshot(page, "job-cancel-dialog")
    await dialog.get_by_role("button", name="Cancel job").click()
    await page.wait_for_selector("[data-testid=job-detail][data-status=CANCELLED]", timeout=OPEN)
    assert "wrong catalog" in await detail.text_content()

    await page.get_by_role("button", name="Retry").click()
    retry_dialog = page.get_by_role("dialog", name="Retry this job?")
    await retry_dialog.get_by_role("button", name="Retry job").click()
    await page.get_by_text("Attempt 2 was queued.").wait_for(timeout=OPEN)
    await page.get_by_role("button", name="Open attempt 2").click()
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=job-detail]')?.textContent.includes('Attempt 2 of')"
    )
    second = re.search(r"/jobs/([0-9a-f-]{36})", page.url)
    assert second and second.group(1) != job_id

    # The server refuses when the job changed behind the panel's back: its message is shown as it is.
    await page.get_by_role("button", name="Cancel job").click()
    await page.get_by_role("dialog", name="Cancel this job?").wait_for()
    await dashboard.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=second.group(1)), timeout=T)
    await page.get_by_role("dialog", name="Cancel this job?").get_by_role("button", name="Cancel job").click()
    refusal = page.get_by_role("dialog", name="Cancel this job?").get_by_role("alert")
    await refusal.wait_for(timeout=OPEN)
    assert "already finished" in await refusal.text_content()
    await page.keyboard.press("Escape")
    await page.get_by_role("dialog", name="Cancel this job?").wait_for(state="detached")
    await page.keyboard.press("Escape")
    await detail.wait_for(state="detached")
    assert re.search(r"/jobs\?type=", page.url)


async def test_a_viewer_sees_retry_and_cancel_disabled_with_the_reason(open_page: Any, dashboard: Dashboard) -> None:
    """A viewer key: both actions are marked disabled, say which role they need, and open no dialog; the server
    refuses the same mutation with FORBIDDEN."""
    job_id = await dashboard.queued_job(f"UI_VIEWER_{uuid.uuid4().hex[:6].upper()}")
    page = await open_page(dashboard.viewer, f"/jobs/{job_id}")
    await page.wait_for_selector("[data-testid=job-detail]", timeout=OPEN)
    cancel = page.get_by_role("button", name="Cancel job")
    assert await cancel.get_attribute("aria-disabled") == "true"
    reason = page.locator("#cancel-why")
    assert "Needs the operator role" in await reason.text_content()
    await cancel.click(force=True)  # aria-disabled: still focusable and readable, but it does nothing
    await page.wait_for_timeout(300)
    assert await page.get_by_role("dialog", name="Cancel this job?").count() == 0
    refused = await dashboard.graphql(
        dashboard.viewer, "mutation($id: ID!) { cancelJob(id: $id) { status } }", {"id": job_id}
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await _no_violations(page, "detail panel as a viewer")
    await page.keyboard.press("Escape")
    await page.get_by_role("link", name="Overview").click()
    bulk = page.get_by_role("button", name="Retry failed jobs (24 h)…")
    await bulk.wait_for(timeout=OPEN)
    assert await bulk.get_attribute("aria-disabled") == "true"
    assert "Needs the operator role" in await page.text_content("#bulk-why")


async def test_a_tenant_key_sees_its_tenant_only(open_page: Any, dashboard: Dashboard) -> None:
    """A key limited to tenant-ui: the header names the tenant, the tenant filter is fixed to it, and the table
    and its status counts hold that tenant's jobs only, though the demo's tenants have many more."""
    await dashboard.queued_job(f"UI_TENANT_{uuid.uuid4().hex[:6].upper()}")
    page = await open_page(dashboard.tenant_viewer, "/jobs?size=200")
    await page.wait_for_selector("tr.job-row", timeout=OPEN)
    assert "tenant-ui" in await page.text_content("[data-testid=who]")
    tenant = page.get_by_label("Tenant", exact=True)
    assert await tenant.is_disabled() and await tenant.input_value() == "tenant-ui"
    tenants = await page.eval_on_selector_all(
        "tr.job-row td[data-label=Tenant]", "cells => [...new Set(cells.map(c => c.textContent.trim()))]"
    )
    assert tenants == ["tenant-ui"]
    everyone = (await dashboard.graphql(dashboard.operator, "{ jobs(first: 1) { totalCount } }"))["data"]["jobs"]
    mine = (await dashboard.graphql(dashboard.tenant_viewer, "{ jobs(first: 1) { totalCount } }"))["data"]["jobs"]
    assert mine["totalCount"] < everyone["totalCount"]
    assert f"of {mine['totalCount']}" in await page.text_content("[data-testid=row-range]")


async def test_every_action_works_from_the_keyboard_alone(open_page: Any, dashboard: Dashboard) -> None:
    """Keys only: skip link, the Jobs tab, the error-text search and Clear filters, the job type picked by typing,
    sort, open a job, its Cancel dialog, Escape back out; focus is always visible and stays inside an open panel."""
    job_type = f"UI_KEYS_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.queued_job(job_type)
    page = await open_page(dashboard.operator, "/")
    await page.wait_for_selector("section[data-ready=true]", timeout=OPEN)

    async def tab_to(predicate: str, limit: int = 60, *, back: bool = False) -> None:
        for _ in range(limit):
            await page.keyboard.press("Shift+Tab" if back else "Tab")
            if await page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({predicate}); }})()"):
                outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"no visible focus on {predicate}"
                return
        raise AssertionError(f"Tab never reached {predicate}")

    await tab_to("el.classList.contains('skip-link')")
    await tab_to("el.textContent.trim() === 'Jobs'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/jobs"))
    await tab_to("el.type === 'search' && el.placeholder.startsWith('e.g.')")
    await page.keyboard.type("no-such-error-text")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"q=no-such-error-text"))
    await page.get_by_text("No jobs match these filters.").wait_for(timeout=OPEN)
    await tab_to("el.textContent.trim() === 'Clear filters'")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => !location.search.includes('q=')")
    await tab_to("el.id === 'filter-type'", back=True)
    await page.keyboard.type(job_type)  # a closed <select> picks the option typed, as for any keyboard user
    await page.wait_for_url(re.compile(f"type={job_type}"))
    await page.wait_for_selector(f"tr[data-job-id='{job_id}']", timeout=OPEN)
    await tab_to("el.classList.contains('sort') && el.textContent.includes('Type')")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"sort=JOB_TYPE"))
    await tab_to(f"el.closest('tr')?.dataset.jobId === '{job_id}'")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("[data-testid=job-detail]", timeout=OPEN)
    for _ in range(25):  # the modal panel keeps focus inside
        await page.keyboard.press("Tab")
        assert await page.evaluate("!!document.activeElement.closest('dialog')")
    await page.get_by_role("button", name="Cancel job").focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Cancel this job?")
    await dialog.wait_for()
    await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached")
    await page.keyboard.press("Escape")
    await page.wait_for_selector("[data-testid=job-detail]", state="detached")
