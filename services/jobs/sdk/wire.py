"""The SDK's transport: protobuf ⇄ SDK types, gRPC errors → SDK errors. The only module that imports `_pb2`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.keepalive import client_options
from services.common.protoconv import from_struct, to_struct
from services.common.tls import GrpcTLS
from services.jobs.sdk.errors import JobsServiceError, JobsServiceUnavailable
from services.jobs.sdk.model import JobInfo, Outcome, OutcomeKind, Outgoing, StepStatus

if TYPE_CHECKING:
    from b2x.monitoring.v1.jobs_pb2_grpc import JobsServiceAsyncStub

Stub: TypeAlias = "JobsServiceAsyncStub"  # the stub class exists for type checkers only

# Codes after which the same request may succeed later: the service restarting, overloaded, or a
# call cut short. Anything else means the request itself is wrong and resending cannot help.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)

# Reconnect quickly after the jobs service restarts (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    # Pings the B2X servers accept: an idle worker notices a vanished service without a GOAWAY too_many_pings.
    *client_options(),
]

_STEP = {
    StepStatus.RUNNING: jobs_pb2.JOB_STEP_STATUS_RUNNING,
    StepStatus.COMPLETED: jobs_pb2.JOB_STEP_STATUS_COMPLETED,
    StepStatus.FAILED: jobs_pb2.JOB_STEP_STATUS_FAILED,
}
_STATUS_NAME: dict[int, str] = {int(v): name.removeprefix("JOB_STATUS_") for name, v in jobs_pb2.JobStatus.items()}


def open_channel(address: str, tls: GrpcTLS | None = None) -> tuple[grpc.aio.Channel, Stub]:
    """TLS when `tls` names a CA file (services/common/tls.py), plaintext otherwise."""
    if tls is not None and tls.dials_tls:
        options = [*CHANNEL_OPTIONS, *tls.channel_options()]
        channel = grpc.aio.secure_channel(address, tls.channel_credentials(), options=options)
    else:
        channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return channel, jobs_pb2_grpc.JobsServiceStub(channel)


def open_sync_channel(address: str, tls: GrpcTLS | None = None) -> tuple[grpc.Channel, jobs_pb2_grpc.JobsServiceStub]:
    """A blocking channel for the monitor's sender thread (see JobMonitor._send)."""
    if tls is not None and tls.dials_tls:
        options = [*CHANNEL_OPTIONS, *tls.channel_options()]
        channel = grpc.secure_channel(address, tls.channel_credentials(), options=options)
    else:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    return channel, jobs_pb2_grpc.JobsServiceStub(channel)


def translate(error: grpc.RpcError) -> JobsServiceError:
    """The SDK's exception for a failed call (aio or blocking); unavailability is a ConnectionError (transient)."""
    call = cast(grpc.Call, error)
    code = call.code()
    details = call.details() or code.name
    if code in RETRYABLE:
        return JobsServiceUnavailable(code.name, details)
    return JobsServiceError(code.name, details)


def status_name(value: int) -> str:
    return _STATUS_NAME.get(int(value), "UNSPECIFIED")


def job_info(job: jobs_pb2.SchedulerJob) -> JobInfo:
    return JobInfo(
        id=job.id,
        job_type=job.job_type,
        tenant_id=job.tenant_id,
        parameters=from_struct(job.parameters) if job.parameters.fields else {},
        metadata=from_struct(job.metadata) if job.metadata.fields else {},
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        total_items=job.progress.total_items,
        retry_of_job_id=job.retry_of_job_id,
        status=status_name(job.status),
        progress_sequence=job.progress.sequence,
        log_sequence=job.log_sequence,
    )


def create_request(
    job_type: str,
    tenant_id: str,
    parameters: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    total_items: int,
    max_attempts: int,
    idempotency_key: str,
    created_by: str,
) -> jobs_pb2.CreateJobRequest:
    return jobs_pb2.CreateJobRequest(
        job_type=job_type,
        tenant_id=tenant_id,
        parameters=to_struct(plain(dict(parameters or {}))),
        metadata=to_struct(plain(dict(metadata or {}))),
        total_items=total_items,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        created_by=created_by,
    )


def start_total(total_items: object) -> int:
    """The total a start carries; a bad one is reported (and refused) with the progress, not here."""
    try:
        return max(0, int(total_items))  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return 0


def claim_request(worker_id: str, job_types: Sequence[str], max_jobs: int) -> jobs_pb2.ClaimJobsRequest:
    return jobs_pb2.ClaimJobsRequest(worker_id=worker_id, job_types=list(job_types), max_jobs=max_jobs)


def plain(value: Any) -> Any:
    """A JSON-safe copy of log context or parameters: what protobuf's Struct can carry."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)  # Struct numbers are doubles
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def _outcome(report: jobs_pb2.JobReport, outcome: Outcome) -> None:
    # SetInParent marks the oneof member as present even when its message is empty.
    if outcome.kind is OutcomeKind.COMPLETED:
        report.completed.SetInParent()
        report.completed.message = outcome.message
    elif outcome.kind is OutcomeKind.CANCELLED:
        report.cancelled.SetInParent()
        report.cancelled.message = outcome.message
    else:
        failed = report.failed
        failed.error_message = outcome.message
        failed.error_category = outcome.category
        failed.error_class = jobs_pb2.ERROR_CLASS_TRANSIENT if outcome.transient else jobs_pb2.ERROR_CLASS_PERMANENT
        failed.stack_trace = outcome.stack_trace


def batch_request(
    worker_id: str, outgoing: Iterable[Outgoing], heartbeat_ids: list[str], planned_ns: int = 0
) -> tuple[jobs_pb2.ReportBatchRequest, list[tuple[Outgoing, str]]]:
    """The request, and the reports that could not be encoded with the reason (they are left out,
    so one bad value cannot hold every other job's reports back). `planned_ns`: when the round that
    made it ran (wall clock), carried into the events it causes."""
    request = jobs_pb2.ReportBatchRequest(
        worker_id=worker_id, heartbeat_job_ids=heartbeat_ids, planned_at_unix_nanos=planned_ns
    )
    broken: list[tuple[Outgoing, str]] = []
    for out in outgoing:
        try:
            _add_report(request.reports.add(job_id=out.track.job_id), out)
        except (TypeError, ValueError, OverflowError) as error:
            del request.reports[-1]
            broken.append((out, f"the report could not be encoded: {error}"))
    return request, broken


def _add_report(report: jobs_pb2.JobReport, out: Outgoing) -> None:
    track = out.track
    if out.start:
        report.start.total_items = start_total(track.total)
    progress = out.progress
    if progress is not None:
        p = report.progress
        p.sequence = progress.sequence
        p.processed_items = progress.processed
        p.succeeded_items = progress.succeeded
        p.failed_items = progress.failed
        p.total_items = progress.total
        p.message = progress.message
    base = track.log_base
    for record in out.logs:
        entry = report.logs.add(sequence=base + record.sequence, level=record.level, message=record.message)
        entry.timestamp.FromNanoseconds(record.time_ns)
        if record.stack_trace:
            entry.stack_trace = record.stack_trace
        if record.context:
            entry.context.update(plain(record.context))
    for step in out.steps:
        update = report.steps.add(index=step.index, name=step.name, status=_STEP[step.status], message=step.message)
        update.at.FromNanoseconds(step.time_ns)
    if out.outcome is not None:
        _outcome(report, out.outcome)


def send_batch(stub: Any, request: jobs_pb2.ReportBatchRequest, timeout: float) -> jobs_pb2.ReportBatchResponse:
    """ReportBatch on the blocking channel (the monitor's sender thread), stamped with the moment it leaves."""
    request.sent_at_unix_nanos = time.time_ns()
    return cast(jobs_pb2.ReportBatchResponse, stub.ReportBatch(request, timeout=timeout))
