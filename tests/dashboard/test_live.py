"""Live behaviour in the browser: progress and logs move as the job reports, and a gateway restart is
survived with the screen brought up to date."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import psutil
import pytest
from b2x.monitoring.v1 import common_pb2, jobs_pb2

from tests.dashboard.conftest import Dashboard, T, axe_violations, screenshot

pytestmark = pytest.mark.e2e
OPEN = 15_000


async def _progress(dashboard: Dashboard, job_id: str, processed: int, sequence: int) -> None:
    await dashboard.jobs.ReportProgress(
        jobs_pb2.ReportProgressRequest(
            worker_id="ui-test",
            job_id=job_id,
            total_items=100,
            processed_items=processed,
            succeeded_items=processed,
            sequence=sequence,
        ),
        timeout=T,
    )


def _bar(job_id: str) -> str:
    return f"tr[data-job-id='{job_id}'] [role=progressbar]"


async def test_progress_moves_on_screen_while_the_job_reports(open_page: Any, dashboard: Dashboard) -> None:
    """A running job's bar goes 0 → 40 → 85 % with the reports, without a reload, with aria-valuenow/max set and
    no animation when the operator prefers reduced motion; the demo's own jobs move too; axe passes as rows
    update."""
    job_type = f"UI_PROGRESS_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.running_job(job_type)
    page = await open_page(dashboard.operator, f"/jobs?type={job_type}")
    await page.wait_for_selector(_bar(job_id), timeout=OPEN)
    assert await page.get_attribute(_bar(job_id), "aria-valuemax") == "100"
    assert await page.get_attribute(_bar(job_id), "aria-valuenow") == "0"
    for sequence, processed in enumerate((40, 85), start=1):
        await _progress(dashboard, job_id, processed, sequence)
        await page.wait_for_selector(f"{_bar(job_id)}[aria-valuenow='{processed}']", timeout=5000)
    assert "85 / 100" in await page.text_content(f"tr[data-job-id='{job_id}']")
    fill = f"tr[data-job-id='{job_id}'] .progress-fill"
    assert await page.eval_on_selector(fill, "el => getComputedStyle(el).transitionDuration") != "0s"
    await page.emulate_media(reduced_motion="reduce")  # the operator asked the OS for less motion
    assert await page.eval_on_selector(fill, "el => getComputedStyle(el).transitionDuration") == "0s"
    await page.emulate_media(reduced_motion="no-preference")

    for _ in range(60):  # the demo worker needs a few seconds after `b2c up` to have jobs running
        running = await dashboard.graphql(
            dashboard.operator, "{ jobs(filter: {status: [RUNNING]}, first: 50) { nodes { jobType } } }"
        )
        if sum(not n["jobType"].startswith("UI_") for n in running["data"]["jobs"]["nodes"]) >= 2:
            break
        await asyncio.sleep(0.5)
    await page.goto(f"{dashboard.url}/jobs?status=RUNNING")
    await page.wait_for_selector("tr.job-row", timeout=OPEN)
    before = await page.eval_on_selector_all(
        "tr.job-row",
        "rows => rows.map(r => r.dataset.jobId + ':' + r.querySelector('[role=progressbar]').ariaValueNow)",
    )
    await page.wait_for_function(
        "before => document.querySelectorAll('tr.job-row').length > 0 && [...document.querySelectorAll('tr.job-row')]"
        ".some(r => !before.includes(r.dataset.jobId + ':' + r.querySelector('[role=progressbar]').ariaValueNow))",
        arg=before,
        timeout=20_000,
    )
    await screenshot(page, "jobs")
    violations = await axe_violations(page, "job table, live")
    assert violations == [], violations


async def test_a_change_between_reading_the_rows_and_subscribing_to_them_still_reaches_the_row(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The rows are read over HTTP, their subscription starts on the websocket a moment later (longer on a slow
    connection): a report in between must not be lost. The rows' subscription is held back in the browser while
    the job reports 40 %; once it reaches the gateway, the row shows 40 % (its `since` replays the change)."""
    job_type = f"UI_GAP_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.running_job(job_type)
    page = await open_page(dashboard.operator)
    held: list[str | bytes] = []
    server: list[Any] = []

    def route(ws: Any) -> None:
        upstream = ws.connect_to_server()
        server.append(upstream)

        def from_page(message: str | bytes) -> None:
            if "JobRowChanged" in str(message) and len(server) == 1 and not held:
                held.append(message)  # the first socket's row subscription waits
                return
            upstream.send(message)

        ws.on_message(from_page)
        upstream.on_message(ws.send)

    await page.route_web_socket(re.compile(r"/graphql"), route)
    await page.goto(f"{dashboard.url}/jobs?type={job_type}")
    await page.wait_for_selector(f"{_bar(job_id)}[aria-valuenow='0']", timeout=OPEN)
    for _ in range(100):
        if held:
            break
        await asyncio.sleep(0.1)
    assert held, "the rows' subscription was never sent"
    await _progress(dashboard, job_id, 40, 1)
    await asyncio.sleep(1.0)  # committed and published while nobody listened for this row
    server[0].send(held[0])
    await page.wait_for_selector(f"{_bar(job_id)}[aria-valuenow='40']", timeout=5000)
    assert page.watch.errors == [], page.watch.errors


async def test_the_log_follows_live_and_filters_by_level(open_page: Any, dashboard: Dashboard) -> None:
    """Lines the worker sends appear in the open panel within seconds; a level filter hides INFO lines; the
    panel shows steps as they are reported."""
    job_type = f"UI_LOG_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.running_job(job_type)
    page = await open_page(dashboard.operator, f"/jobs/{job_id}?type={job_type}")
    await page.wait_for_selector("[data-testid=job-detail]", timeout=OPEN)
    log = page.locator("[data-testid=log-lines]")

    async def send(sequence: int, level: int, message: str) -> None:
        entry = jobs_pb2.LogEntry(sequence=sequence, level=level, message=message)  # type: ignore[arg-type]
        entry.timestamp.GetCurrentTime()
        step = jobs_pb2.StepUpdate(index=0, name="load articles", status=jobs_pb2.JOB_STEP_STATUS_RUNNING)
        await dashboard.jobs.ReportBatch(
            jobs_pb2.ReportBatchRequest(
                worker_id="ui-test",
                reports=[
                    jobs_pb2.JobReport(
                        job_id=job_id,
                        logs=[entry],
                        steps=[step],
                        progress=jobs_pb2.ProgressUpdate(total_items=100, processed_items=sequence, sequence=sequence),
                    )
                ],
            ),
            timeout=T,
        )

    await send(1, common_pb2.LOG_LEVEL_INFO, "connected to enventa Trade")
    await log.get_by_text("connected to enventa Trade").wait_for(timeout=5000)
    await send(2, common_pb2.LOG_LEVEL_WARNING, "article 4711 skipped: price group unknown")
    await log.get_by_text("article 4711 skipped").wait_for(timeout=5000)
    await page.get_by_text("load articles").wait_for(timeout=5000)
    await screenshot(page, "job-detail")

    await page.get_by_label("Level").select_option("WARNING")
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=log-lines]').textContent.includes('connected to enventa')"
    )
    await send(3, common_pb2.LOG_LEVEL_INFO, "quiet info line")
    await send(4, common_pb2.LOG_LEVEL_ERROR, "ERP read timeout after 30 s")
    await log.get_by_text("ERP read timeout after 30 s").wait_for(timeout=5000)
    assert "quiet info line" not in await log.text_content()
    violations = await axe_violations(page, "detail panel with a live log")
    assert violations == [], violations


def _gateway_process(dashboard: Dashboard) -> psutil.Process:
    port = dashboard.stack.port("B2X_GATEWAY_PORT")
    for child in psutil.Process(dashboard.stack.process.pid).children(recursive=True):
        try:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                return child
        except psutil.Error:
            continue
    raise AssertionError("the gateway process was not found")


async def test_after_a_gateway_restart_the_screen_reconnects_and_catches_up(
    open_page: Any, dashboard: Dashboard
) -> None:
    """The gateway is killed: the header says so; progress reported while it is down is on screen once `b2c up`
    has restarted it and the app has reconnected, without a reload."""
    job_type = f"UI_RECONNECT_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.running_job(job_type)
    page = await open_page(dashboard.operator, f"/jobs?type={job_type}")
    await page.wait_for_selector(_bar(job_id), timeout=OPEN)
    state = page.locator("[data-testid=connection-state]")
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=connection-state]').textContent.includes('Live')"
    )

    _gateway_process(dashboard).kill()
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=connection-state]').textContent.includes('Live')", timeout=10_000
    )
    shown = await state.text_content()
    assert any(word in shown for word in ("Reconnecting", "Polling", "Connecting")), shown
    await _progress(dashboard, job_id, 70, 1)  # while the gateway is down: no event reaches the page

    await page.wait_for_function(
        "() => document.querySelector('[data-testid=connection-state]').textContent.includes('Live')", timeout=60_000
    )
    await page.wait_for_selector(f"{_bar(job_id)}[aria-valuenow='70']", timeout=10_000)
    await asyncio.sleep(0)  # the restarted gateway is the one later tests use


async def test_with_websockets_blocked_the_screen_polls_and_still_moves(open_page: Any, dashboard: Dashboard) -> None:
    """A proxy that refuses websockets: the header says the app is polling, and progress still reaches the row
    within a polling period or two."""
    job_type = f"UI_POLLING_{uuid.uuid4().hex[:6].upper()}"
    job_id = await dashboard.running_job(job_type)
    page = await open_page()

    async def refuse(ws: Any) -> None:
        await ws.close(code=1013, reason="websockets are blocked here")

    await page.route_web_socket(re.compile(r"/graphql$"), refuse)
    await page.goto(f"{dashboard.url}/#key={dashboard.operator}")
    await page.goto(f"{dashboard.url}/jobs?type={job_type}")
    await page.wait_for_selector(_bar(job_id), timeout=OPEN)
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=connection-state]').textContent.includes('Polling')",
        timeout=15_000,
    )
    await _progress(dashboard, job_id, 60, 1)
    await page.wait_for_selector(f"{_bar(job_id)}[aria-valuenow='60']", timeout=15_000)
