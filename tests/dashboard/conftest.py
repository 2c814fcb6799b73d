"""One real stack for all browser tests, started the way `b2c up --demo` starts it, and Debian's chromium.

The stack runs as separate processes (embedded PostgreSQL and Redis, three services, the gateway, the
demo endpoints and worker) with free ports; the browser is /usr/bin/chromium driven by Playwright, never
a browser Playwright downloads. Each test opens its own browser context (its own sessionStorage).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.embedded import free_port
from tests.e2e.test_stack import RunningStack, stack_env, start, stop

CHROMIUM = os.environ.get("B2X_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
BUILT = Path(__file__).resolve().parents[2] / "gateway" / "webapp" / "index.html"
SCREENSHOTS = os.environ.get("B2X_SCREENSHOT_DIR")
T = 10


@dataclass
class Dashboard:
    """The running demo stack as the browser tests see it."""

    stack: RunningStack
    link: str
    operator: str
    viewer: str
    tenant_viewer: str  # a viewer limited to tenant-ui, the tenant of the tests' own jobs
    jobs: jobs_pb2_grpc.JobsServiceStub
    channel: grpc.aio.Channel

    @property
    def url(self) -> str:
        return self.stack.api

    async def graphql(self, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await graphql(self.url, key, query, variables)

    async def queued_job(self, job_type: str, tenant: str = "tenant-ui", total: int = 100) -> str:
        """A job no demo worker claims (its type is ours), so only the test moves it."""
        job = (
            await self.jobs.CreateJob(
                jobs_pb2.CreateJobRequest(job_type=job_type, tenant_id=tenant, total_items=total, max_attempts=1),
                timeout=T,
            )
        ).job
        return str(job.id)

    async def running_job(self, job_type: str, total: int = 100) -> str:
        job_id = await self.queued_job(job_type, total=total)
        await self.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job_id, worker_id="ui-test"), timeout=T)
        return job_id


async def graphql(url: str, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=T) as http:
        response = await http.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
        )
    body: dict[str, Any] = response.json()
    return body


def _skip_without_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (CI installs Debian's chromium in .ci/run)")
    if not AXE.exists():
        pytest.skip("frontend/node_modules is missing: run `make install`")


@pytest.fixture(scope="session")
async def dashboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    _skip_without_browser()
    if not BUILT.exists():
        pytest.fail("the dashboard is not built: run `make install`")
    env = stack_env(tmp_path_factory.mktemp("dashboard"))
    env.update({f"B2X_DEMO_{name}_PORT": str(free_port()) for name in ("ERP", "PIM", "CRM", "SMTP", "WEBHOOK")})
    running = await start(env, "--demo")
    try:
        link = next(m.group(1) for line in running.output if (m := re.search(r"Dashboard\s+(\S+)", line)))
        keys = {}
        for name, role, tenant in (
            ("OPERATOR", "OPERATOR", None),
            ("VIEWER", "VIEWER", None),
            ("TENANT", "VIEWER", "tenant-ui"),
        ):
            created = await graphql(
                running.api,
                running.admin_key,
                "mutation($n: String!, $r: Role!, $t: String) { createApiKey(name: $n, role: $r, tenantId: $t) { key } }",
                {"n": f"ui {name.lower()}", "r": role, "t": tenant},
            )
            keys[name] = created["data"]["createApiKey"]["key"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port('B2X_JOBS_PORT')}") as channel:
            yield Dashboard(
                running,
                link,
                keys["OPERATOR"],
                keys["VIEWER"],
                keys["TENANT"],
                jobs_pb2_grpc.JobsServiceStub(channel),
                channel,
            )
    finally:
        if running.process.returncode is None:
            await stop(running)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    _skip_without_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


class Watch:
    """What a page did that a user would not see: console errors, CSP violations, requests elsewhere."""

    def __init__(self, page: Any, origin: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: r.url.startswith(("http", "ws")) and not r.url.startswith(
            (origin, origin.replace("http", "ws"))) and self.foreign.append(r.url))  # fmt: skip


@pytest.fixture
async def open_page(browser: Any, dashboard: Dashboard) -> AsyncIterator[Any]:
    """`await open_page(key, path, width=…, height=…)`: a new tab, signed in with `key` through the sign-in link
    when given, then at `path` when given."""
    contexts = []

    async def opener(key: str | None = None, path: str | None = None, *, width: int = 1400, height: int = 1000) -> Any:
        context = await browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(context)
        page = await context.new_page()
        page.watch = Watch(page, dashboard.url)
        if key:
            await page.goto(f"{dashboard.url}/#key={key}")
            await page.wait_for_selector("[data-testid=connection-state]")
        if path is not None:
            await page.goto(f"{dashboard.url}{path}")
        return page

    yield opener
    for context in contexts:
        await context.close()


async def axe_violations(page: Any, context: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (injected through the DevTools protocol,
    so the page's CSP does not have to allow it)."""
    await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result: dict[str, Any] = await page.evaluate(
        "async () => JSON.parse(JSON.stringify(await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})))"
    )
    return [
        {"context": context, "id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


async def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Saved for the README when B2X_SCREENSHOT_DIR is set (`make screenshots`)."""
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)
