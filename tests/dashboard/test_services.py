"""The connected services screens in Debian's chromium against a real `b2c up --demo` stack: the services panel
(live status and resources, filters), the connection test dialog (phases live, result, exports, earlier runs),
each with axe-core and the keyboard."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import pytest

from tests.dashboard.conftest import Dashboard, axe_violations, screenshot

pytestmark = pytest.mark.e2e
OPEN = 15_000  # ms a screen may take on a busy 2-core CI machine
SERVICES = "{ services { id slug name type status statusReason resources { cpuPercent } } }"


async def _no_violations(page: Any, context: str) -> None:
    violations = await axe_violations(page, context)
    assert violations == [], violations


async def _services(dashboard: Dashboard) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = (await dashboard.graphql(dashboard.operator, SERVICES))["data"]["services"]
    return services


async def test_the_services_panel_shows_each_service_live_and_filters_by_status_and_type(
    open_page: Any, dashboard: Dashboard
) -> None:
    """A card per service with the API's name, type, status and reason, gauges with values and limits for sampled
    services, a sparkline with a text alternative; resource figures move without a reload; the type and status
    filters live in the URL; axe passes on a desktop and a phone."""
    services = await _services(dashboard)
    assert {"erp", "pim", "crm", "postgres"} <= {s["slug"] for s in services}
    page = await open_page(dashboard.operator, "/services")
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    assert await page.locator(".service-card").count() == len(services)
    for service in services:
        card = page.locator(f"li[data-service='{service['slug']}']")
        assert await card.locator("h3").text_content() == service["name"]
        assert re.search(r"Healthy|Degraded|Unhealthy|Unknown", await card.locator(".badge").first.text_content())
        if service["resources"]:
            cpu = card.get_by_role("meter", name="CPU")
            assert 0 <= int(await cpu.get_attribute("aria-valuenow")) <= 100
            assert "limit" in await cpu.get_attribute("aria-valuetext")
            assert "Memory, recent usage" in await card.locator("svg.spark-memory").get_attribute("aria-label")
    crm = page.locator("li[data-service='crm']")
    assert await crm.locator(".type-tag").text_content() == "CRM"

    # Live: the demo samples resources every 5 s; the CRM's CPU meter moves without a reload.
    before = await crm.get_by_role("meter", name="CPU").get_attribute("aria-valuetext")
    await page.wait_for_function(
        "before => document.querySelector(\"li[data-service='crm'] [role=meter]\").getAttribute('aria-valuetext')"
        " !== before",
        arg=before,
        timeout=20_000,
    )
    await _no_violations(page, "services panel")
    await screenshot(page, "services", full_page=True)

    await page.get_by_role("checkbox", name=re.compile(r"^Database")).check()
    await page.wait_for_url(re.compile(r"type=DATABASE"))
    # The demo's PostgreSQL and, with self-monitoring on (as `b2c up` runs it), B2X's own (b2x-postgres).
    databases = sorted(s["slug"] for s in services if s["type"] == "DATABASE")
    assert "postgres" in databases
    shown = "() => [...document.querySelectorAll('.service-card')].map(c => c.dataset.service).sort().join(',')"
    await page.wait_for_function(f"() => ({shown})() === {','.join(databases)!r}")
    await page.reload()
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    assert await page.locator(".service-card").count() == len(databases)
    await page.get_by_role("checkbox", name=re.compile(r"^Database")).uncheck()
    await page.get_by_role("checkbox", name=re.compile(r"^Healthy")).check()
    await page.wait_for_url(re.compile(r"status=ONLINE"))
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.service-card')].every(c => c.dataset.status === 'ONLINE')"
    )
    chip = await page.get_by_role("checkbox", name=re.compile(r"^Healthy")).locator("xpath=..").text_content()
    assert f"({await page.locator('.service-card').count()})" in chip  # the chip counts what the filter shows
    assert page.watch.errors == [], page.watch.errors
    assert page.watch.foreign == [], page.watch.foreign

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(300)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the services panel is {overflow} px wider than a phone"
    await _no_violations(page, "services panel on a phone")


async def test_a_connection_test_shows_its_phases_as_they_complete_then_the_result_and_exports_it(
    open_page: Any, dashboard: Dashboard
) -> None:
    """Test on the ERP card (keyboard): the dialog shows each phase as the server reports it, before the result;
    then pass/fail, the latency bars, speed rating and throughput; JSON and PDF exports are the server's report of
    this run; a second run lists the first under earlier results; Escape closes it."""
    page = await open_page(dashboard.operator, "/services")
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    await page.evaluate(
        """() => { window.__seen = []; new MutationObserver(() => {
            const done = document.querySelectorAll('.phase:not([data-status=WAITING])').length;
            const result = !!document.querySelector('[data-testid=test-result]');
            const last = window.__seen[window.__seen.length - 1];
            if (!last || last[0] !== done || last[1] !== result) window.__seen.push([done, result]);
        }).observe(document.body, {subtree: true, childList: true, attributes: true}); }"""
    )
    await page.get_by_role("button", name="Test the connection to enventa Trade ERP").focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile("^Connection test: "))
    await dialog.wait_for(timeout=OPEN)
    assert re.search(r"/services/erp/test", page.url)
    result = dialog.locator("[data-testid=test-result]")
    await result.wait_for(timeout=OPEN)
    seen = await page.evaluate("window.__seen")
    assert any(done >= 1 and not has_result for done, has_result in seen), seen  # phases came before the result
    assert await dialog.locator(".phase[data-phase=dns]").get_attribute("data-status") == "PASSED"
    assert await dialog.locator(".phase[data-phase=tcp_connect]").get_attribute("data-status") == "PASSED"
    assert await dialog.locator(".phase[data-phase=tls_handshake]").get_attribute("data-status") == "SKIPPED"
    assert await dialog.get_by_role("progressbar", name="Test progress").get_attribute("aria-valuenow") == "100"
    stored = (
        await dashboard.graphql(
            dashboard.operator,
            '{ connectionTests(service: "erp", first: 1) { results { id success speedRating metrics { totalLatencyMs } } } }',
        )
    )["data"]["connectionTests"]["results"][0]
    assert await result.get_attribute("data-success") == ("true" if stored["success"] else "false")
    assert await dialog.locator("table.bars tbody tr").count() == 5
    if stored["speedRating"]:
        assert f"Speed: {stored['speedRating'].capitalize()}" in await result.text_content()
    assert "Throughput" in await result.text_content()
    await _no_violations(page, "connection test result")
    await screenshot(page, "connection-test")

    async with page.expect_download() as download_info:
        await dialog.get_by_role("button", name="Export JSON").click()
    download = await download_info.value
    report = json.loads((await download.path()).read_text(encoding="utf-8"))
    assert stored["id"] in json.dumps(report)
    async with page.expect_download() as download_info:
        await dialog.get_by_role("button", name="Export PDF").click()
    pdf = (await (await download_info.value).path()).read_bytes()
    assert pdf.startswith(b"%PDF"), base64.b64encode(pdf[:16])

    await dialog.get_by_role("button", name="Run again").click()
    await page.wait_for_selector("[data-testid=connection-test][data-state=done]", timeout=OPEN)
    earlier = dialog.locator("[data-testid=earlier] tbody tr")
    await earlier.first.wait_for(timeout=OPEN)
    assert await earlier.count() >= 1
    await _no_violations(page, "connection test with earlier results")
    await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached")
    assert page.url.endswith("/services")

    # Opening (or reloading) the dialog's address shows it ready to run, but runs no test by itself.
    await page.goto(f"{dashboard.url}/services/erp/test")
    await page.wait_for_selector("[data-testid=connection-test][data-state=idle]", timeout=OPEN)
    await page.wait_for_timeout(1000)
    assert await page.locator("[data-testid=connection-test]").get_attribute("data-state") == "idle"
    await page.get_by_role("button", name="Run test").click()
    await page.wait_for_selector("[data-testid=connection-test][data-state=done]", timeout=OPEN)
    assert page.watch.errors == [], page.watch.errors


async def test_a_viewer_cannot_start_a_connection_test(open_page: Any, dashboard: Dashboard) -> None:
    """A viewer sees Test marked disabled with the role it needs; opening the dialog's address starts nothing;
    the server refuses the subscription's mutation twin with FORBIDDEN."""
    page = await open_page(dashboard.viewer, "/services")
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    test = page.get_by_role("button", name="Test the connection to enventa Trade ERP")
    assert await test.get_attribute("aria-disabled") == "true"
    assert "Needs the operator role" in await page.locator("li[data-service='erp'] .why").text_content()
    await test.click(force=True)
    await page.wait_for_timeout(300)
    assert "/test" not in page.url
    await page.goto(f"{dashboard.url}/services/erp/test")
    dialog = page.get_by_role("dialog", name=re.compile("^Connection test: "))
    await dialog.wait_for(timeout=OPEN)
    assert await page.locator("[data-testid=connection-test]").get_attribute("data-state") == "idle"
    await _no_violations(page, "connection test as a viewer")
    refused = await dashboard.graphql(dashboard.viewer, 'mutation { testConnection(service: "erp") { id } }')
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_latency_and_uptime_history_per_service_for_each_range(open_page: Any, dashboard: Dashboard) -> None:
    """From the ERP card's History link (keyboard): average and 95th percentile latency and availability as charts
    with a text summary and a table; 1 h, 24 h, 7 d and 30 d ranges from the rollups, kept in the URL."""
    for _ in range(90):  # a fresh stack: the ERP's first checks reach the rollups within its 30 s interval
        rolled = await dashboard.graphql(
            dashboard.operator, '{ latencyHistory(service: "erp") { summary { checks } } }'
        )
        if (rolled["data"]["latencyHistory"]["summary"] or {}).get("checks"):
            break
        await asyncio.sleep(0.5)
    page = await open_page(dashboard.operator, "/services")
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    await page.get_by_role("link", name="History of enventa Trade ERP").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/services/erp/history"))
    await page.wait_for_selector("section[data-ready=true] figure.chart", timeout=OPEN)
    assert await page.get_by_role("heading", level=1).text_content() == "Latency and uptime: enventa Trade ERP"
    charts = page.locator("figure.chart")
    assert await charts.count() == 2
    assert "95th percentile" in await charts.nth(0).locator(".chart-summary").text_content()
    assert "checks" in await charts.nth(1).locator(".chart-summary").text_content()
    assert await page.get_by_role("button", name="24 hours").get_attribute("aria-pressed") == "true"

    await page.get_by_role("button", name="1 hour").click()
    await page.wait_for_url(re.compile(r"range=1h"))
    await page.wait_for_selector("section[data-ready=true] figure.chart", timeout=OPEN)
    api = (
        await dashboard.graphql(
            dashboard.operator,
            'query($s: DateTime!) { latencyHistory(service: "erp", since: $s) { bucket points { checks } summary { checks } } }',
            {"s": await page.evaluate("new Date(Date.now() - 3600000).toISOString()")},
        )
    )["data"]["latencyHistory"]
    assert api["bucket"] == "MINUTE" and api["summary"]["checks"] >= 1
    await charts.nth(0).get_by_text("Show the figures as a table").click()
    rows = await charts.nth(0).locator("tbody tr").count()
    assert abs(rows - len(api["points"])) <= 1, (rows, len(api["points"]))
    await _no_violations(page, "latency history, 1 hour, table open")
    await screenshot(page, "service-history")

    for key, label in (("7d", "7 days"), ("30d", "30 days")):
        await page.get_by_role("button", name=label).click()
        await page.wait_for_url(re.compile(f"range={key}"))
        await page.wait_for_selector("section[data-ready=true] figure.chart", timeout=OPEN)
        assert await page.get_by_role("button", name=label).get_attribute("aria-pressed") == "true"
    await charts.nth(1).get_by_text("Show the figures as a table").click()
    assert 1 <= await charts.nth(1).locator("tbody tr").count() <= 31  # daily buckets
    await _no_violations(page, "latency history, 30 days")
    assert page.watch.errors == [], page.watch.errors


async def test_the_resource_monitor_shows_live_figures_history_thresholds_and_alerts(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The CRM (the demo runs it hot): current CPU, memory and pool against their limits, threads and queue; a live
    chart that grows with each sample; history for 1 h and 24 h; the thresholds as the API has them (read-only for a viewer); the
    resource alert history the API stores; axe passes."""
    alerts: list[dict[str, Any]] = []
    for _ in range(80):  # the demo's CRM breaches its memory and queue limits within a few samples
        alerts = (
            await dashboard.graphql(
                dashboard.operator, '{ resourceAlerts(service: "crm", first: 50) { alerts { id alertType } } }'
            )
        )["data"]["resourceAlerts"]["alerts"]
        if alerts:
            break
        await asyncio.sleep(0.5)
    assert alerts, "the demo CRM raised no resource alert"
    thresholds = (
        await dashboard.graphql(
            dashboard.viewer, '{ resources(services: ["crm"]) { thresholds { memoryPercent queueDepth } } }'
        )
    )["data"]["resources"][0]["thresholds"]

    page = await open_page(dashboard.viewer, "/services")
    await page.wait_for_selector("section[data-ready=true] .service-card", timeout=OPEN)
    await page.get_by_role("link", name="Resources of CRM Integration").click()
    await page.wait_for_url(re.compile(r"/services/crm/resources"))
    await page.wait_for_selector("section[data-ready=true] [data-testid=resources-now]", timeout=OPEN)
    now = page.locator("[data-testid=resources-now]")
    for name in ("CPU", "Memory", "Pool"):
        assert "limit" in await now.get_by_role("meter", name=name).get_attribute("aria-valuetext")
    assert re.fullmatch(r"[\d,.]+", (await page.text_content("[data-testid=threads]")).strip())
    limits = page.locator("[data-testid=thresholds]")
    assert f"{round(thresholds['memoryPercent'])} %" in await limits.text_content()
    assert f"{thresholds['queueDepth']:,} items".replace(",", "") in (await limits.text_content()).replace(",", "")
    assert await limits.locator("input, select").count() == 0  # a viewer: the editor stays closed, with the reason
    assert await limits.get_by_role("button", name="Edit thresholds").get_attribute("aria-disabled") == "true"

    live = page.locator("[data-testid=live-chart]")
    await live.get_by_text("Show the figures as a table").click()
    first = await live.locator("tbody tr").count()
    await page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=live-chart] tbody tr').length > {first}", timeout=20_000
    )
    table = page.locator("[data-testid=resource-alerts] tbody tr")
    await table.first.wait_for(timeout=OPEN)
    assert await table.count() >= len(alerts)
    assert {alert["alertType"] for alert in alerts} <= set(
        await page.eval_on_selector_all(
            "[data-testid=resource-alerts] tbody tr", "rows => rows.map(r => r.dataset.alertType)"
        )
    )
    assert await page.locator("figure.chart").count() == 4
    await _no_violations(page, "resource monitor")
    await screenshot(page, "resources", full_page=True)

    await page.get_by_role("button", name="24 hours").click()
    await page.wait_for_url(re.compile(r"range=24h"))
    await page.wait_for_selector("section[data-ready=true] [data-testid=resources-now]", timeout=OPEN)
    assert (
        "over the last 24 hours" in await page.locator("figure.chart").nth(1).locator(".chart-summary").text_content()
    )
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(300)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the resource monitor is {overflow} px wider than a phone"
    await _no_violations(page, "resource monitor on a phone")
    assert page.watch.errors == [], page.watch.errors
