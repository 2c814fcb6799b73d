"""Calls from a running job to a connected service (ERP, PIM, CRM...), correlated to the job.

A job that calls a connected service through a client from `CallReporter.client()`:

- sends `X-B2X-Job-Id: <job id>` with every request (and the W3C `traceparent` of a client span when
  tracing is on), so the service's own logs can be matched with the job;
- has every failed call (network error, timeout, HTTP status >= 400) reported to the probes service,
  which classifies and masks it with the same rules as the errors its probes find and stores it as a
  communication error with `correlatedJobId` set — the dashboard's error log links it to the job.

    async with CallReporter(probes_addr, worker_id="erp-worker-1") as calls:

        async def sync_articles(job: JobInfo, handle: JobHandle) -> None:
            async with calls.client(job, "erp", base_url=erp_url, timeout=10) as erp:
                response = await erp.get("/articles")   # a 503 raises nothing here; it is reported
                response.raise_for_status()              # the job decides what a failure means to it

Reporting never blocks or fails the job: a failure is masked and queued synchronously (no I/O), a
background task sends batches with `ReportCallFailures`, and when the queue is full (the probes service
down for a long time) further failures are dropped and counted in `stats.dropped`. Masking happens here
already (headers, URL credentials and query secrets, bearer tokens in bodies), and again in the probes
service with the registry's own secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import grpc
import httpx
from b2x.monitoring.v1 import probes_pb2, probes_pb2_grpc

from services.common.channels import open_channel
from services.common.logging import get_logger
from services.common.masking import MASK, is_secret_parameter, is_sensitive_key, mask_headers, mask_text, sanitize_url
from services.common.tasks import stop_tasks
from services.common.tls import GrpcTLS
from services.common.tracing import tracing_enabled
from services.jobs.sdk.handle import JobHandle
from services.jobs.sdk.model import JobInfo

log = get_logger(__name__)

JOB_ID_HEADER = "X-B2X-Job-Id"
# The start of an error answer's body that is kept as evidence.
BODY_LIMIT = 8192
MESSAGE_LIMIT = 2000
MAX_BATCH = 500
K = probes_pb2.CallFailureKind


@dataclass
class CallReporterStats:
    """What the reporter did; `dropped` counts failures lost because the queue was full."""

    recorded: int = 0
    reported: int = 0
    dropped: int = 0
    send_failures: int = 0
    rejected: int = 0


def _job_id(job: JobInfo | JobHandle | str) -> str:
    if isinstance(job, str):
        return job
    return job.id if isinstance(job, JobInfo) else job.job_id


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not s for s in seen) and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_kind(error: BaseException) -> tuple[probes_pb2.CallFailureKind.ValueType, int]:
    """(CallFailureKind, errno) of an httpx transport error."""
    chain = _chain(error)
    errno_ = next((e.errno for e in chain if isinstance(e, OSError) and isinstance(e.errno, int)), 0)
    if isinstance(error, httpx.ConnectTimeout):
        return K.CALL_FAILURE_KIND_CONNECT_TIMEOUT, 0
    if isinstance(error, httpx.ReadTimeout):
        return K.CALL_FAILURE_KIND_READ_TIMEOUT, 0
    if isinstance(error, httpx.WriteTimeout):
        return K.CALL_FAILURE_KIND_WRITE_TIMEOUT, 0
    if isinstance(error, httpx.PoolTimeout):
        return K.CALL_FAILURE_KIND_POOL_TIMEOUT, 0
    if any(isinstance(e, socket.gaierror) for e in chain):
        return K.CALL_FAILURE_KIND_DNS_ERROR, errno_
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return K.CALL_FAILURE_KIND_TLS_ERROR, 0
    if isinstance(error, httpx.ConnectError):
        if "name or service not known" in str(error).lower() or "nodename nor servname" in str(error).lower():
            return K.CALL_FAILURE_KIND_DNS_ERROR, errno_
        return K.CALL_FAILURE_KIND_CONNECT_ERROR, errno_
    return K.CALL_FAILURE_KIND_PROTOCOL_ERROR, errno_


def _timeout_of(request: httpx.Request, kind: probes_pb2.CallFailureKind.ValueType) -> float:
    timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
    name = {
        K.CALL_FAILURE_KIND_CONNECT_TIMEOUT: "connect",
        K.CALL_FAILURE_KIND_READ_TIMEOUT: "read",
        K.CALL_FAILURE_KIND_WRITE_TIMEOUT: "write",
        K.CALL_FAILURE_KIND_POOL_TIMEOUT: "pool",
    }.get(kind, "connect")
    return float(timeouts.get(name) or 0.0)


# Shorter values are not worth hunting for (and would mask ordinary words).
_MIN_SECRET = 4


def request_secrets(request: httpx.Request) -> list[str]:
    """What this request sent as a secret (sensitive header values, the URL password, secret query values), to
    remove wherever it shows up again, e.g. in a body the server echoed back. Longest first."""
    found: set[str] = set()
    for name, value in request.headers.multi_items():
        if is_sensitive_key(name):
            found.add(value)
            found.add(value.split(" ", 1)[-1])
    if request.url.password:
        found.add(request.url.password)
    for name, value in request.url.params.multi_items():
        if is_secret_parameter(name):
            found.add(value)
    return sorted((v for v in found if len(v) >= _MIN_SECRET), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return mask_text(text)


def _headers(headers: httpx.Headers, secrets: list[str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers.multi_items():
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return {name: scrub(value, secrets) for name, value in mask_headers(merged).items()}


def _size(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class JobCallTransport(httpx.AsyncBaseTransport):
    """An httpx transport that tags a job's requests and reports its failed calls; wraps any transport."""

    def __init__(
        self, reporter: CallReporter, job_id: str, service: str, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._reporter = reporter
        self._job_id = job_id
        self._service = service
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers[JOB_ID_HEADER] = self._job_id
        if not tracing_enabled():
            return await self._send(request, "")
        from opentelemetry import propagate, trace  # noqa: PLC0415 - installed with tracing

        tracer = trace.get_tracer("b2x.jobs.sdk")
        attributes = {"http.request.method": request.method, "b2x.job_id": self._job_id, "b2x.service": self._service}
        with tracer.start_as_current_span(f"{request.method} {self._service}", kind=trace.SpanKind.CLIENT,
                                          attributes=attributes):  # fmt: skip
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            for name, value in carrier.items():
                request.headers[name] = value
            return await self._send(request, carrier.get("traceparent", ""))

    async def _send(self, request: httpx.Request, traceparent: str) -> httpx.Response:
        started = time.perf_counter()
        occurred = datetime.now(UTC)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as error:
            kind, errno_ = failure_kind(error)
            self._record(request, occurred, started, traceparent, kind=kind, error=error, errno_=errno_)
            raise
        if response.status_code >= 400:
            # An error answer is small as a rule; it is read here (the caller can still read it) and only its
            # start is kept as evidence.
            body = await response.aread()
            self._record(request, occurred, started, traceparent, kind=K.CALL_FAILURE_KIND_HTTP_STATUS,
                         response=response, body=body)  # fmt: skip
        return response

    def _record(
        self,
        request: httpx.Request,
        occurred: datetime,
        started: float,
        traceparent: str,
        *,
        kind: probes_pb2.CallFailureKind.ValueType,
        error: BaseException | None = None,
        errno_: int = 0,
        response: httpx.Response | None = None,
        body: bytes = b"",
    ) -> None:
        try:
            secrets = request_secrets(request)
            failure = probes_pb2.CallFailure(
                failure_id=str(uuid.uuid4()),
                job_id=self._job_id,
                service=self._service,
                kind=kind,
                http_method=request.method,
                url=mask_text(sanitize_url(str(request.url))),
                request_headers=_headers(request.headers, secrets),
                error_message=scrub(str(error), secrets)[:MESSAGE_LIMIT] if error is not None else "",
                os_errno=errno_,
                duration_ms=(time.perf_counter() - started) * 1000,
                traceparent=traceparent,
                timeout_seconds=_timeout_of(request, kind),
            )
            failure.occurred_at.FromDatetime(occurred)
            if (size := _size(request.headers.get("content-length"))) is not None:
                failure.request_size_bytes = size
            if response is not None:
                failure.status_code = response.status_code
                failure.reason_phrase = response.reason_phrase
                failure.response_headers.update(_headers(response.headers, secrets))
                # Known secrets out of the body; the probes service masks what looks like one.
                text = body[: BODY_LIMIT * 2].decode("utf-8", "replace")
                for secret in secrets:
                    text = text.replace(secret, MASK)
                failure.response_body = text.encode()[:BODY_LIMIT]
                failure.response_size_bytes = len(body)
            self._reporter.record(failure)
        except Exception:
            log.warning("a failed call could not be recorded", job_id=self._job_id, exc_info=True)

    async def aclose(self) -> None:
        await self._inner.aclose()


class CallReporter:
    """Reports a worker's failed calls to the probes service in the background (see the module doc).

    `max_pending` bounds the queue; `flush_interval` is how long a failure waits at most before it is sent.
    A batch the probes service refuses as a whole (a job this worker does not own, an unknown service) is
    logged and counted in `stats.rejected`, never retried; one that does not arrive is kept and sent again.
    """

    def __init__(
        self,
        probes_addr: str,
        worker_id: str,
        *,
        max_pending: int = 10_000,
        flush_interval: float = 0.5,
        batch_size: int = 200,
        rpc_timeout: float = 10.0,
        tls: GrpcTLS | None = None,
    ) -> None:
        if not worker_id:
            raise ValueError("worker_id is required: the probes service checks that the worker runs the job")
        if max_pending < 1 or not 1 <= batch_size <= MAX_BATCH or flush_interval <= 0 or rpc_timeout <= 0:
            raise ValueError("max_pending >= 1, 1 <= batch_size <= 500, flush_interval > 0 and rpc_timeout > 0")
        self.probes_addr = probes_addr
        self.worker_id = worker_id
        self.stats = CallReporterStats()
        self._pending: deque[probes_pb2.CallFailure] = deque()
        self._max_pending = max_pending
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._rpc_timeout = rpc_timeout
        self._tls = tls
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, failure: probes_pb2.CallFailure) -> None:
        """Queue one failed call; synchronous and cheap. Dropped (and counted) when the queue is full."""
        if len(self._pending) >= self._max_pending:
            self.stats.dropped += 1
            return
        self._pending.append(failure)
        self.stats.recorded += 1
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def transport(
        self, job: JobInfo | JobHandle | str, service: str, inner: httpx.AsyncBaseTransport | None = None
    ) -> JobCallTransport:
        """A transport for your own `httpx.AsyncClient(transport=...)`; `service` is the registry's id or slug."""
        if not service.strip():
            raise ValueError("service is required: the connected service's id or slug in the registry")
        return JobCallTransport(self, _job_id(job), service.strip(), inner)

    def client(self, job: JobInfo | JobHandle | str, service: str, **options: Any) -> httpx.AsyncClient:
        """An `httpx.AsyncClient` (any of its options) whose calls are correlated to `job`."""
        inner = options.pop("transport", None)
        return httpx.AsyncClient(transport=self.transport(job, service, inner), **options)

    async def start(self) -> None:
        if self._task is None:
            self._channel = open_channel(self.probes_addr, self._tls, target="probes")
            self._task = asyncio.create_task(self._run(), name="job-call-reporter")

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most `timeout` seconds), then close."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        await stop_tasks([self._task])  # ends it if it is still sending; logs what it failed with, if it did
        if not done:
            log.warning("job call failures not reported at shutdown", pending=len(self._pending))
        self._task = None
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def flush(self) -> None:
        """Send everything queued now (tests, and a worker about to exit)."""
        while self._pending:
            if not await self._send_batch():
                return

    async def _run(self) -> None:
        backoff = self._flush_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            self._wake.clear()
            sent_all = True
            while self._pending and (sent_all := await self._send_batch()):
                pass
            if self._stopping and (sent_all or not self._pending):
                return
            backoff = self._flush_interval if sent_all else min(backoff * 2, 30.0)

    async def _send_batch(self) -> bool:
        """True when the batch left the queue (stored or refused), False to try again later."""
        batch = [self._pending[i] for i in range(min(self._batch_size, len(self._pending)))]
        outcome = await self._send(batch)
        if outcome is None:
            return False
        if not outcome and len(batch) > 1:
            # One bad failure (a job of another worker, an unknown service) refuses the whole batch: the
            # others go one by one, so only the bad ones are lost.
            for failure in batch:
                if await self._send([failure]) is None:
                    return False
                self._pending.popleft()
            return True
        for _ in batch:
            self._pending.popleft()
        return True

    async def _send(self, batch: list[probes_pb2.CallFailure]) -> bool | None:
        """True when stored, False when refused (counted and logged), None when it did not arrive."""
        assert self._channel is not None
        stub = probes_pb2_grpc.ProbesServiceStub(self._channel)
        request = probes_pb2.ReportCallFailuresRequest(worker_id=self.worker_id, failures=batch)
        try:
            await stub.ReportCallFailures(request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self.stats.send_failures += 1
                return None
            if len(batch) == 1:
                self.stats.rejected += 1
                log.warning("the probes service refused a job call failure", code=error.code().name,
                            detail=error.details(), job_id=batch[0].job_id)  # fmt: skip
            return False
        self.stats.reported += len(batch)
        return True
