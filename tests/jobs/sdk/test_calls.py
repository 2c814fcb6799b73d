"""The Job SDK's call wrapper over real HTTP: tagging, failure kinds, and a reporter that never holds up a job."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from b2x.monitoring.v1 import probes_pb2

from services.jobs.sdk.calls import JOB_ID_HEADER, CallReporter, failure_kind
from tests.otlp import OtlpReceiver
from tests.probes.servers import HttpTestServer, Route

K = probes_pb2.CallFailureKind
TOKEN = "tok-5ecret-abc123"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_failures_are_recognised_by_kind() -> None:
    """A refused connect is CONNECT_ERROR with ECONNREFUSED; an unknown host DNS_ERROR; a silent server READ_TIMEOUT."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(2, read=0.2)) as client:
        with pytest.raises(httpx.TransportError) as refused:
            await client.get(f"http://127.0.0.1:{_closed_port()}/")
        assert failure_kind(refused.value) == (K.CALL_FAILURE_KIND_CONNECT_ERROR, errno.ECONNREFUSED)
        with pytest.raises(httpx.TransportError) as unknown:
            await client.get("http://no-such-host.invalid/")
        assert failure_kind(unknown.value)[0] == K.CALL_FAILURE_KIND_DNS_ERROR
        async with HttpTestServer({"/": Route(hang=True)}) as web:
            with pytest.raises(httpx.TransportError) as silent:
                await client.get(web.url("/"))
            assert failure_kind(silent.value) == (K.CALL_FAILURE_KIND_READ_TIMEOUT, 0)


async def test_a_full_queue_drops_and_counts_and_the_job_never_waits() -> None:
    """With the probes service unreachable, calls answer as fast as without the wrapper; failures beyond
    `max_pending` are dropped and counted; what is queued is masked; stopping gives up after its timeout."""
    echo = f'{{"note": "{TOKEN}"}}'.encode()
    routes = {"/busy": Route(503, "Service Unavailable", headers=[("X-Echo", TOKEN)], body=echo)}
    async with HttpTestServer(routes) as web:
        reporter = CallReporter(f"127.0.0.1:{_closed_port()}", "w-1", max_pending=2, flush_interval=0.05)
        await reporter.start()
        try:
            async with reporter.client("5f0c6f9e-0000-4000-8000-000000000001", "erp", base_url=web.url("/")) as c:
                started = time.perf_counter()
                answers = [
                    await c.get("/busy", params={"token": TOKEN}, headers={"Authorization": f"Bearer {TOKEN}"})
                    for _ in range(5)
                ]
                elapsed = time.perf_counter() - started
            assert [a.status_code for a in answers] == [503] * 5 and all(a.content == echo for a in answers)
            assert elapsed < 2.0
            assert reporter.stats.recorded == 2 and reporter.stats.dropped == 3 and reporter.pending == 2
            queued = str(list(reporter._pending))
            assert (
                TOKEN not in queued and "****masked****" in queued and "5f0c6f9e-0000-4000-8000-000000000001" in queued
            )
            assert all(r.headers[JOB_ID_HEADER.lower()] == "5f0c6f9e-0000-4000-8000-000000000001"
                       for r in web.requests)  # fmt: skip
        finally:
            started = time.perf_counter()
            await reporter.stop(timeout=0.5)
            assert time.perf_counter() - started < 3.0
        assert reporter.stats.reported == 0 and reporter.stats.send_failures >= 1


TRACED_CALL = """
import asyncio, sys
from opentelemetry import trace
from services.common.tracing import configure_tracing
from services.jobs.sdk.calls import CallReporter

async def main() -> None:
    assert configure_tracing("call-test")
    reporter = CallReporter("127.0.0.1:1", "w-1", flush_interval=30)
    await reporter.start()
    async with reporter.client("5f0c6f9e-0000-4000-8000-000000000002", "erp") as client:
        await client.get(sys.argv[1])
    print(reporter._pending[0].traceparent)
    await reporter.stop(timeout=0.1)
    trace.get_tracer_provider().force_flush()

asyncio.run(main())
"""


async def test_with_tracing_on_a_call_carries_the_traceparent_of_its_own_client_span() -> None:
    """The server gets `traceparent`; the reported failure names the same trace; the span (kind CLIENT, with the
    job id) reaches the collector. Tracing is process-wide, so this runs in its own process."""
    async with (
        OtlpReceiver().running() as receiver,
        HttpTestServer({"/down": Route(503, "Service Unavailable")}) as web,
    ):
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", TRACED_CALL, web.url("/down"), env=env, cwd=Path(__file__).parents[3],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()[-2000:]
        sent = web.requests[0].headers["traceparent"]
        assert sent in out.decode().split()  # the queued failure names the trace the server saw
        trace_id, span_id = sent.split("-")[1:3]
        spans = await receiver.wait_for(trace_id, {"b2x-call-test"})
        client = next(s for s in spans if s.span_id == span_id)
        assert client.name == "GET erp" and client.kind == 3  # SPAN_KIND_CLIENT
        assert client.attributes["b2x.job_id"] == "5f0c6f9e-0000-4000-8000-000000000002"
