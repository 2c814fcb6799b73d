"""The demo worker of `b2c up --demo`: realistic ERP/PIM/CRM jobs, run with the Job SDK.

A feeder queues jobs across three tenants (thousands of items, some slow, some failing with ERP
timeouts that the service retries automatically, some failing permanently with validation errors),
and a `WorkerRunner` claims and runs them: steps connect → load → transform → write, progress per
item, a few log lines with context, failures with stack traces. About eight jobs run at any time,
so every screen moves. Stop it with SIGTERM like the rest of the stack.

Each job really calls its simulated system (`b2c.stack.demo.endpoints`: `/api/<records>` on the ERP, PIM
or CRM port) through the Job SDK's `CallReporter`, at connect and for every page it loads. When the
system is in one of its fault windows (ERP backup timeouts, PIM 503 bursts, CRM expired tokens) the
call fails, the job fails as transient, and the failed call shows up in the error log as a
communication error linked to the job (docs/adr/0022-job-error-correlation.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from dataclasses import dataclass

import httpx

from b2c.stack.demo.systems import SYSTEMS
from b2c.stack.settings import StackPorts
from services.common.logging import configure_logging, get_logger
from services.common.runtime import run_process, wait_for_shutdown
from services.common.settings import CommonSettings, load_settings
from services.common.tracing import configure_tracing
from services.jobs.sdk import (
    JobHandle,
    JobInfo,
    JobMonitor,
    JobsServiceUnavailable,
    PermanentJobError,
    TransientJobError,
    WorkerRunner,
)
from services.jobs.sdk.calls import CallReporter

log = get_logger(__name__)


@dataclass(frozen=True)
class Profile:
    """How a kind of job behaves: size, speed, and how it fails."""

    job_type: str
    system: str
    items: tuple[int, int]
    items_per_second: tuple[float, float]
    transient_failure: float
    permanent_failure: float
    transient: tuple[str, str]  # category, message: the remote system did not answer
    permanent: tuple[str, str]  # category, message: the data is wrong and stays wrong


PROFILES = (
    Profile("ERP_ARTICLE_SYNC", "enventa Trade", (2000, 10000), (40, 120), 0.10, 0.03,
            ("ERP_CONNECTION_FAILED", "did not answer within 30 s (read timeout)"),
            ("ERP_DATA_VALIDATION", "article 4711-B rejected: price group 'EK9' unknown")),
    Profile("ERP_PRICE_UPDATE", "enventa Trade", (500, 3000), (30, 80), 0.05, 0.02,
            ("ERP_SESSION_TIMEOUT", "ORM session expired during bulk update"),
            ("ERP_DATA_VALIDATION", "price list PL-2026 is locked")),
    Profile("ERP_STOCK_SYNC", "enventa Trade", (300, 1500), (60, 150), 0.05, 0.01,
            ("ERP_CONNECTION_FAILED", "connection reset by peer"),
            ("ERP_DATA_VALIDATION", "warehouse W03 does not exist")),
    Profile("ERP_ORDER_EXPORT", "enventa Trade", (10, 80), (5, 15), 0.04, 0.02,
            ("ERP_CONNECTION_FAILED", "ERP busy (HTTP 503)"),
            ("ERP_DATA_VALIDATION", "order 2026-118 has no customer number")),
    Profile("ERP_CUSTOMER_SYNC", "enventa Trade", (1000, 5000), (30, 70), 0.05, 0.02,
            ("ERP_BULK_PARTIAL", "partial bulk write: 12 of 500 rows timed out"),
            ("ERP_DATA_VALIDATION", "customer 10042: invalid VAT id")),
    Profile("PIM_IMPORT", "PIM", (1000, 6000), (50, 110), 0.04, 0.03,
            ("CONNECTION_FAILED", "PIM answered 502 Bad Gateway"),
            ("DATA_VALIDATION", "asset feed: schema mismatch in 'dimensions'")),
    Profile("CRM_EXPORT", "CRM", (200, 2000), (20, 60), 0.08, 0.02,
            ("AUTHENTICATION_FAILED", "CRM token expired"),
            ("DATA_VALIDATION", "CRM rejected field 'segment' (unknown)")),
)  # fmt: skip
BY_TYPE = {p.job_type: p for p in PROFILES}
# Which simulated system (its slug in the demo services file) a profile's jobs call, and what they read.
SLUG_OF = {"enventa Trade": "erp", "PIM": "pim", "CRM": "crm"}
RESOURCE_OF = {
    "ERP_ARTICLE_SYNC": "articles", "ERP_PRICE_UPDATE": "prices", "ERP_STOCK_SYNC": "stock",
    "ERP_ORDER_EXPORT": "orders", "ERP_CUSTOMER_SYNC": "customers", "PIM_IMPORT": "products",
    "CRM_EXPORT": "contacts",
}  # fmt: skip
# A job gives up on a call after this long; the ERP's backup window never answers.
CALL_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
PAGES = 1
TENANTS = ("tenant-north", "tenant-south", "tenant-west")
CONCURRENCY = 8


class RemoteTimeout(TimeoutError):
    """What the simulated ERP/PIM/CRM client raises when the remote system does not answer."""


def _remote_call(system: str, operation: str, message: str) -> None:
    raise RemoteTimeout(f"{system} {operation}: {message}")


def _validate(record: str, message: str, category: str) -> None:
    raise PermanentJobError(f"{record}: {message}", category=category)


def _fate(profile: Profile, attempt: int, rng: random.Random) -> str:
    """ "ok", "transient" or "permanent"; retries mostly succeed, as they do against a real ERP."""
    draw = rng.random()
    transient = profile.transient_failure / (3 if attempt > 1 else 1)
    if draw < transient:
        return "transient"
    if draw < transient + profile.permanent_failure:
        return "permanent"
    return "ok"


@dataclass(frozen=True)
class Remote:
    """How jobs reach the simulated systems; failed calls are reported as errors correlated to the job."""

    calls: CallReporter
    urls: dict[str, str]  # slug → base URL

    def client(self, job: JobInfo, slug: str) -> httpx.AsyncClient:
        token = next(s.token for s in SYSTEMS if s.slug == slug)
        return self.calls.client(
            job, slug, base_url=self.urls[slug], timeout=CALL_TIMEOUT, headers={"Authorization": f"Bearer {token}"}
        )


def _call_failed(profile: Profile, error: httpx.HTTPError) -> TransientJobError:
    category, _ = profile.transient
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return TransientJobError(f"{profile.system} answered HTTP {status} {error.response.reason_phrase}",
                                 category=category)  # fmt: skip
    if isinstance(error, httpx.TimeoutException):
        return TransientJobError(f"{profile.system} did not answer within {CALL_TIMEOUT.read:g} s", category=category)
    return TransientJobError(f"{profile.system} unreachable: {type(error).__name__}", category=category)


async def read_pages(job: JobInfo, handle: JobHandle, profile: Profile, remote: Remote) -> None:
    """Log in (the health endpoint) and read a few pages of records from the job's system."""
    slug = SLUG_OF[profile.system]
    resource = RESOURCE_OF[profile.job_type]
    async with remote.client(job, slug) as client:
        try:
            (await client.get("/api/health")).raise_for_status()
            for page in range(1, PAGES + 1):
                answer = await client.get(f"/api/{resource}", params={"page": page})
                answer.raise_for_status()
        except httpx.HTTPError as error:
            # The call is already in the error log, linked to this job; the job fails as transient (retried).
            handle.error(f"call to {profile.system} failed", resource=resource, error=type(error).__name__)
            raise _call_failed(profile, error) from error


async def run_job(job: JobInfo, handle: JobHandle, rng: random.Random, remote: Remote | None = None) -> None:
    """One job: connect, load, transform item by item, write; fails the way its profile says."""
    profile = BY_TYPE[job.job_type]
    transient_category, transient_text = profile.transient
    permanent_category, permanent_text = profile.permanent
    total = int(job.parameters.get("items", 0)) or rng.randint(*profile.items)
    fate = _fate(profile, job.attempt, rng)
    fail_at = int(total * rng.uniform(0.2, 0.9)) if fate != "ok" else None
    rate = rng.uniform(*profile.items_per_second)
    slow_from = int(total * rng.uniform(0.3, 0.6)) if rng.random() < 0.15 else None

    async with handle.step("connect"):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        if fate == "transient" and rng.random() < 0.3:
            try:
                _remote_call(profile.system, "login", transient_text)
            except RemoteTimeout as error:
                raise TransientJobError(str(error), category=transient_category) from error
        handle.info(f"connected to {profile.system}", session=uuid.uuid4().hex[:8], attempt=job.attempt)
    async with handle.step("load"):
        if remote is not None:
            await read_pages(job, handle, profile, remote)
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        handle.info(f"loaded {total} records", source=profile.system, tenant=job.tenant_id)
    handle.start(total_items=total)
    async with handle.step("transform"):
        chunk = max(1, int(rate / 10))
        for item in range(1, total + 1):
            if rng.random() >= 0.003:
                handle.item_done()
            else:
                handle.item_done(ok=False)
                handle.warning("record skipped", record=f"{profile.job_type[:3]}-{item}", reason="missing field")
            if item == slow_from:
                handle.warning(f"{profile.system} is responding slowly", latency_ms=rng.randint(2500, 8000))
                rate /= 5
            if item == fail_at and fate == "transient":
                try:
                    _remote_call(profile.system, "bulk write", transient_text)
                except RemoteTimeout as error:
                    raise TransientJobError(str(error), category=transient_category) from error
            elif item == fail_at:
                _validate(f"record {item}", permanent_text, permanent_category)
            if item % chunk == 0:
                await asyncio.sleep(chunk / rate)
    async with handle.step("write"):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        handle.info("changes committed", rows=total, target=profile.system)


async def feed(monitor: JobMonitor, runner: WorkerRunner, rng: random.Random) -> None:
    """Keep a couple of jobs queued so the worker always runs about CONCURRENCY of them."""
    created = 0
    while True:
        # Automatic retries are claimed too, so this underestimates the queue; good enough to pace.
        if created - runner.claimed < 2:
            profile = rng.choice(PROFILES)
            total = rng.randint(*profile.items)
            try:
                await monitor.create_job(
                    profile.job_type,
                    tenant_id=rng.choice(TENANTS),
                    parameters={"items": total, "source": profile.system, "batch": f"B-{rng.randint(1000, 9999)}"},
                    metadata={"demo": True},
                    total_items=total,
                    max_attempts=3,
                    idempotency_key=str(uuid.uuid4()),
                    created_by="demo feeder",
                )
                created += 1
            except JobsServiceUnavailable as error:
                log.warning("cannot queue a demo job yet", error=str(error))
        # Fill the worker quickly at start, then trickle in as jobs finish.
        await asyncio.sleep(0.5 if runner.running < CONCURRENCY else rng.uniform(1, 4))


async def main() -> None:
    settings = load_settings(CommonSettings)
    configure_logging("demo", settings.log_level, settings.log_format)
    configure_tracing("demo-worker")  # with OTEL_EXPORTER_OTLP_ENDPOINT set, the SDK's reports are traced
    rng = random.Random()  # noqa: S311 - demo data, not security

    worker_id = f"demo-worker-{os.getpid()}"
    ports = StackPorts.from_env()
    calls = CallReporter(settings.probes_addr, worker_id)
    await calls.start()
    remote = Remote(calls, {slug: f"http://{ports.local_host}:{port}" for slug, port in ports.demo.items()})

    async def handler(job: JobInfo, handle: JobHandle) -> None:
        await run_job(job, handle, rng, remote)

    monitor = JobMonitor(settings.jobs_addr, worker_id)
    await monitor.start()
    # Grace periods add up to well under the 15 s `b2c up` waits before it kills a part.
    runner = WorkerRunner(
        monitor, dict.fromkeys(BY_TYPE, handler), concurrency=CONCURRENCY, shutdown_grace=3, cancel_grace=2
    )
    running = asyncio.create_task(runner.run())
    feeder = asyncio.create_task(feed(monitor, runner, rng))
    try:
        signal_name = await wait_for_shutdown()
        log.info("shutting down", signal=signal_name, running=runner.running)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        runner.stop()
        await running
        await monitor.close(timeout=5)
        await calls.stop(timeout=2)
        log.info("call failures reported", reported=calls.stats.reported, dropped=calls.stats.dropped)


if __name__ == "__main__":
    run_process("demo", main)
