"""The service error log and the communication error inspector in Debian's chromium against a real stack: a
real HTTP service of the test's own that answers 503 to a request carrying a bearer token makes the errors, so
the evidence (masked headers, JSON body, timing, retries) is known; filters, stack traces, copy, export and the
"Report to provider" template, with axe-core."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import uvicorn
from b2x.monitoring.v1 import common_pb2, health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.dashboard.conftest import Dashboard, T, axe_violations, screenshot
from tests.support import serving

pytestmark = pytest.mark.e2e
OPEN = 15_000
SECRET = "ui-secret-token-4711"


async def _no_violations(page: Any, context: str) -> None:
    violations = await axe_violations(page, context)
    assert violations == [], violations


@contextlib.asynccontextmanager
async def failing_service(dashboard: Dashboard) -> AsyncIterator[tuple[str, str]]:
    """A registered HTTP service that answers 503 with a JSON body; yields its slug and the error one connection
    test of it stored."""

    async def unavailable(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "error": "catalog database is in maintenance",
                "retryable": True,
                "caller": request.headers.get("x-tenant-id"),
            },
            status_code=503,
            headers={"Retry-After": "0", "Set-Cookie": "session=abc123; HttpOnly"},
        )

    app = Starlette(routes=[Route("/api/health", unavailable)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    async with serving(config) as port:
        slug = f"ui-broken-{uuid.uuid4().hex[:6]}"
        definition = health_pb2.ServiceDefinition(
            slug=slug,
            name=f"Broken PIM {slug[-6:]}",
            type=common_pb2.SERVICE_TYPE_PIM,
            endpoint=f"http://127.0.0.1:{port}/api/health",
            check_interval_seconds=3600,
            probe=health_pb2.ProbeOptions(
                headers={"Authorization": f"Bearer {SECRET}", "X-Tenant-Id": "tenant-ui"},
                expected_statuses=[200],
                max_retries=1,
                timeout_seconds=5,
            ),
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{dashboard.stack.port('B2X_HEALTH_PORT')}") as channel:
            stub = health_pb2_grpc.HealthServiceStub(channel)
            await stub.RegisterService(health_pb2.RegisterServiceRequest(definition=definition), timeout=T)
            try:
                tested = await dashboard.graphql(
                    dashboard.operator,
                    "mutation($s: String!) { testConnection(service: $s) { success communicationErrorId } }",
                    {"s": slug},
                )
                result = tested["data"]["testConnection"]
                assert result["success"] is False and result["communicationErrorId"], tested
                yield slug, result["communicationErrorId"]
            finally:
                await stub.RemoveService(health_pb2.RemoveServiceRequest(service=slug), timeout=T)


async def test_the_error_log_filters_and_the_inspector_shows_masked_evidence_timing_and_retries(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The service's Logs lead to its errors; group, severity and type filters live in the URL; a row's stack
    trace expands; the inspector shows the group badge, the time to the millisecond, the request with the bearer
    token masked, the JSON body pretty-printed, the waterfall to scale and the retry timeline; copy, export and the
    provider report carry the same error; axe passes on the log and the open inspector."""
    async with failing_service(dashboard) as (slug, error_id):
        stored = (
            await dashboard.graphql(
                dashboard.operator,
                "query($id: ID!) { communicationError(id: $id) { errorType errorGroup severity message "
                "details { timing { totalTimeMs dnsLookupMs tcpConnectionMs tlsHandshakeMs timeToFirstByteMs "
                "contentDownloadMs } retryHistory { attemptNumber } } } }",
                {"id": error_id},
            )
        )["data"]["communicationError"]
        assert stored["errorGroup"] == "SERVICE" and stored["errorType"] == "SERVICE_UNAVAILABLE"

        page = await open_page(dashboard.operator, "/services")
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard.url)
        await page.wait_for_selector(f"li[data-service='{slug}']", timeout=OPEN)
        card = page.locator(f"li[data-service='{slug}']")
        assert int(await card.locator("[data-testid=errors-today]").text_content()) >= 1  # errors since midnight UTC
        await card.get_by_role("link", name=re.compile("^Logs")).click()
        await page.wait_for_url(re.compile(f"/errors\\?service={slug}"))
        row = page.locator(f"tr[data-error-id='{error_id}']")
        await row.wait_for(timeout=OPEN)
        # the heading names the service once the services list has loaded (it may come after the rows)
        heading = page.get_by_role("heading", level=1, name=re.compile("^Service error log: Broken PIM"))
        await heading.wait_for(timeout=OPEN)
        assert await row.get_attribute("data-group") == "SERVICE"
        assert re.search(r"\d{2}:\d{2}:\d{2}\.\d{3}", await row.locator("td").first.text_content())
        if await row.locator("details.stack-details").count():
            await row.get_by_text("Stack trace").click()
            assert await row.locator("pre.stack").is_visible()
        await _no_violations(page, "error log")
        await screenshot(page, "errors")

        await page.get_by_label("From").fill("2099-01-01T00:00")  # a date range after the error: nothing
        await page.wait_for_url(re.compile(r"from=2099-01-01T00%3A00|from=2099-01-01T00:00"))
        await page.get_by_text("No errors match these filters.").wait_for(timeout=OPEN)
        await page.get_by_label("From").fill("")
        await page.wait_for_function("() => !location.search.includes('from=')")
        await row.wait_for(timeout=OPEN)
        await page.get_by_role("checkbox", name="Network").check()
        await page.wait_for_url(re.compile(r"group=NETWORK"))
        await page.get_by_text("No errors match these filters.").wait_for(timeout=OPEN)
        await page.get_by_role("checkbox", name="Network").uncheck()
        await page.get_by_role("checkbox", name="Service").check()
        await page.wait_for_url(re.compile(r"group=SERVICE"))
        await row.wait_for(timeout=OPEN)
        await page.get_by_label("Error type").select_option("SERVICE_UNAVAILABLE")
        await page.wait_for_url(re.compile(r"type=SERVICE_UNAVAILABLE"))
        await page.get_by_role("checkbox", name=stored["severity"].capitalize()).check()
        await page.wait_for_url(re.compile(f"severity={stored['severity']}"))
        await row.wait_for(timeout=OPEN)
        assert await page.eval_on_selector_all("tr.error-row", "rows => rows.every(r => r.dataset.group === 'SERVICE')")

        await row.get_by_role("button", name=re.compile("^Inspect")).click()
        panel = page.locator("[data-testid=error-inspector][data-ready=true]")
        await panel.wait_for(timeout=OPEN)
        assert f"/errors/{error_id}" in page.url and "group=SERVICE" in page.url
        assert (await panel.locator("[data-testid=group-badge]").text_content()).strip() == "Service"
        assert "GET http://127.0.0.1:" in await panel.locator("[data-testid=request-line]").text_content()
        headers = panel.locator("[data-testid=request-headers]")
        await headers.get_by_text(re.compile(r"^Request headers")).click()
        text = await headers.text_content()
        assert "Authorization" in text or "authorization" in text
        assert SECRET not in text and "****masked****" in text
        assert "tenant-ui" in text
        assert "503" in await panel.locator("[data-testid=response-status]").text_content()
        body = await panel.get_by_label("Response body").text_content()
        assert '\n  "error": "catalog database is in maintenance"' in body  # pretty-printed JSON
        timing = stored["details"]["timing"]
        phases = [k for k in ("dnsLookupMs", "tcpConnectionMs", "tlsHandshakeMs", "timeToFirstByteMs", "contentDownloadMs")
                  if timing[k] is not None]  # fmt: skip
        assert await panel.locator("[data-testid=waterfall] tbody tr[data-phase]").count() == len(phases)
        retries = stored["details"]["retryHistory"]
        assert await panel.locator("[data-testid=retries] li").count() == len(retries)
        await _no_violations(page, "error inspector")
        await screenshot(page, "error-inspector")

        await panel.get_by_role("button", name="Copy to clipboard").click()
        await page.locator("[data-testid=announcer]", has_text="copied").wait_for(timeout=OPEN)
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert error_id in copied and SECRET not in copied
        async with page.expect_download() as download_info:
            await panel.get_by_role("button", name="Export for a ticket").click()
        exported = (await (await download_info.value).path()).read_text(encoding="utf-8")
        assert error_id in json.dumps(json.loads(exported)) and SECRET not in exported
        await panel.get_by_role("button", name="Report to provider…").click()
        report = page.get_by_label(re.compile("Paste this into the provider"))
        await report.wait_for(timeout=OPEN)
        assert "maintenance" in await report.input_value() or "503" in await report.input_value()
        assert SECRET not in await report.input_value()
        await _no_violations(page, "error inspector with the provider report")

        await page.set_viewport_size({"width": 390, "height": 844})  # a phone: the panel is a bottom sheet
        await page.wait_for_timeout(300)
        await _no_violations(page, "error inspector on a phone")
        await page.keyboard.press("Escape")
        await panel.wait_for(state="detached")
        assert re.search(r"/errors\?", page.url) and "group=SERVICE" in page.url
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the error log is {overflow} px wider than a phone"
        await _no_violations(page, "error log on a phone")
        assert page.watch.errors == [], page.watch.errors


async def test_error_patterns_show_the_heatmap_top_types_trend_and_recurring_errors(
    open_page: Any, dashboard: Dashboard
) -> None:
    """From the error log's Patterns link for one service: the weekday-by-hour heatmap holds every error of the
    range (its cells add up to the API's total, each with its count written), the top types and trend charts have
    text summaries, recurring errors link back to the filtered log; 7 d and 30 d; axe passes."""
    async with failing_service(dashboard) as (slug, _error_id):
        page = await open_page(dashboard.operator, f"/errors?service={slug}")
        await page.wait_for_selector("section[data-ready=true] tr.error-row", timeout=OPEN)
        await page.get_by_role("link", name="Patterns").click()
        await page.wait_for_url(re.compile(f"/errors/patterns\\?service={slug}"))
        await page.wait_for_selector("section[data-ready=true] [data-testid=heatmap]", timeout=OPEN)
        api = (
            await dashboard.graphql(
                dashboard.operator,
                "query($s: String!, $since: DateTime!) { errorPatterns(service: $s, since: $since) "
                "{ totalErrors fingerprints { fingerprint } topTypes { errorType } } }",
                {"s": slug, "since": await page.evaluate("new Date(Date.now() - 7 * 86400000).toISOString()")},
            )
        )["data"]["errorPatterns"]
        assert api["totalErrors"] >= 1
        cells = await page.eval_on_selector_all("[data-testid=heatmap] td", "tds => tds.map(td => +td.dataset.count)")
        assert len(cells) == 7 * 24 and sum(cells) == api["totalErrors"]
        assert "Busiest hour:" in await page.text_content("[data-testid=heatmap-summary]")
        charts = page.locator("figure.chart")
        assert "Service unavailable" in await charts.nth(0).locator(".chart-summary").text_content()
        trend = await charts.nth(1).locator(".chart-summary").text_content()
        assert re.match(rf"{api['totalErrors']} errors? in the last 7 days", trend), trend
        rows = page.locator("[data-testid=fingerprints] tbody tr")
        assert await rows.count() == len(api["fingerprints"])
        await _no_violations(page, "error patterns")
        await screenshot(page, "error-patterns", full_page=True)

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.wait_for_timeout(300)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = await page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.parentElement.closest('.heatmap-scroll, .scroll-x'))"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className)"
        )
        assert overflow <= 0, f"the patterns page is {overflow} px wider than a phone: {wide}"  # the heatmap scrolls
        await _no_violations(page, "error patterns on a phone")
        await page.set_viewport_size({"width": 1400, "height": 1000})
        await page.get_by_role("button", name="30 days").click()
        await page.wait_for_url(re.compile(r"range=30d"))
        await page.wait_for_selector("section[data-ready=true] [data-testid=heatmap]", timeout=OPEN)
        assert "in the last 30 days" in await charts.nth(1).locator(".chart-summary").text_content()
        await rows.first.get_by_role("link").click()
        await page.wait_for_url(re.compile(f"/errors\\?service={slug}&type=SERVICE_UNAVAILABLE"))
        await page.wait_for_selector("tr.error-row", timeout=OPEN)
        assert page.watch.errors == [], page.watch.errors
