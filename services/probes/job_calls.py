"""Use case: store the failed calls a running job made to connected services (reported by the Job SDK).

Each failure is checked (the job exists and the reporting worker runs it), attributed to a registered
service, classified and masked by the probes' own rules (`probing/calls.py`), stored exactly like an
error a probe found (same table, hourly counts, so fingerprints and patterns include it) with
`correlated_job_id` and the job's tenant, and announced on the bus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.common.errors import FailedPreconditionError, InvalidArgumentError, PermissionDeniedError
from services.common.logging import get_logger
from services.probes.domain import CallFailure, CallFailureKind, CommunicationError, JobOwner, Target
from services.probes.probing.calls import error_from_call
from services.probes.probing.faults import MissingVariable
from services.probes.probing.placeholders import credentials_in, expand
from services.probes.repository import parse_id
from services.probes.service import ProbeEventSink, TargetSource

log = get_logger(__name__)

MAX_FAILURES_PER_REPORT = 500
MAX_WORKER_ID = 200
MAX_URL = 4096
MAX_BODY = 8192
# A report older than this, or this far in the future, has a broken clock or was replayed.
MAX_AGE = timedelta(days=7)
MAX_SKEW = timedelta(minutes=5)


class JobDirectory(Protocol):
    async def owners(self, job_ids: list[str]) -> dict[str, JobOwner]:
        """Who runs each job; NotFoundError for an unknown job, UnavailableError when the source is down."""
        ...


class CallErrorStore(Protocol):
    async def save_errors(self, errors: list[CommunicationError]) -> set[str]:
        """Store the errors whose id is not stored yet; the ids stored now."""
        ...


def validate(worker_id: str, failures: Sequence[CallFailure], now: datetime) -> str:
    """The worker id, stripped; InvalidArgumentError naming the first bad field."""
    worker = worker_id.strip()
    if not worker:
        raise InvalidArgumentError("worker_id is required: name the worker that runs the jobs")
    if len(worker) > MAX_WORKER_ID:
        raise InvalidArgumentError(f"worker_id is longer than {MAX_WORKER_ID} characters")
    if not failures:
        raise InvalidArgumentError("failures is empty: report at least one failed call")
    if len(failures) > MAX_FAILURES_PER_REPORT:
        raise InvalidArgumentError(f"failures holds {len(failures)} calls; at most {MAX_FAILURES_PER_REPORT} a report")
    for n, failure in enumerate(failures):
        _validate_one(f"failures[{n}]", failure, now)
    return worker


def _validate_one(where: str, failure: CallFailure, now: datetime) -> None:
    """InvalidArgumentError naming the first bad field of one failure (`where` is its path)."""
    parse_id(failure.job_id, f"{where}.job_id")
    if failure.failure_id:
        parse_id(failure.failure_id, f"{where}.failure_id")
    if not failure.service.strip():
        raise InvalidArgumentError(f"{where}.service is required: the connected service's id or slug")
    if not failure.url.startswith(("http://", "https://")) or len(failure.url) > MAX_URL:
        raise InvalidArgumentError(f"{where}.url must be an http(s) URL of at most {MAX_URL} characters")
    if not failure.http_method.strip() or len(failure.http_method) > 16:
        raise InvalidArgumentError(f"{where}.http_method is required (GET, POST, ...)")
    if failure.kind is CallFailureKind.HTTP_STATUS and not 400 <= (failure.status_code or 0) <= 599:
        raise InvalidArgumentError(f"{where}.status_code must be 400-599 for an HTTP_STATUS failure")
    if not now - MAX_AGE <= failure.occurred_at <= now + MAX_SKEW:
        raise InvalidArgumentError(f"{where}.occurred_at must lie within the last 7 days")
    if failure.duration_ms < 0 or failure.timeout_seconds < 0:
        raise InvalidArgumentError(f"{where}.duration_ms and timeout_seconds must not be negative")
    if len(failure.response_body) > MAX_BODY:
        raise InvalidArgumentError(f"{where}.response_body holds more than {MAX_BODY} bytes")


class JobCallReports:
    def __init__(
        self,
        targets: TargetSource,
        jobs: JobDirectory,
        store: CallErrorStore,
        events: ProbeEventSink,
        environ: Mapping[str, str],
    ) -> None:
        self._targets = targets
        self._jobs = jobs
        self._store = store
        self._events = events
        self._environ = environ

    async def report(self, worker_id: str, failures: Sequence[CallFailure]) -> list[CommunicationError]:
        worker = validate(worker_id, failures, datetime.now(UTC))
        owners = await self._jobs.owners(sorted({f.job_id.lower() for f in failures}))
        for job_id, owner in owners.items():
            if not owner.worker_id:
                raise FailedPreconditionError(f"job {job_id} has not been started by a worker")
            if owner.worker_id != worker:
                raise PermissionDeniedError(
                    f"job {job_id} is run by worker {owner.worker_id}; worker {worker} may not report its calls"
                )
        targets: dict[str, Target] = {}
        for name in {f.service.strip() for f in failures}:
            targets[name] = await self._targets.get(name)
        errors = []
        for failure in failures:
            target = targets[failure.service.strip()]
            # The registry's secrets, and whatever the call itself sent as one (if the client did not mask it).
            secrets = self._secrets(target) + sorted(credentials_in(failure.url, failure.request_headers))
            errors.append(error_from_call(failure, target, owners[failure.job_id.lower()], secrets))
        stored = await self._store.save_errors(errors)
        for error in errors:
            if error.id in stored:  # a resend of a failure stored before is not announced again
                await self._events.error_recorded(error)
        log.info("job call failures recorded", worker_id=worker, count=len(errors),
                 jobs=len(owners))  # fmt: skip
        return errors

    def _secrets(self, target: Target) -> list[str]:
        """The registry's own secrets for the service (its ${NAME} values, URL password): a job calling with
        the same token has it removed even where no masking rule would find it."""
        try:
            return sorted(expand(target.endpoint, target.options.headers, self._environ).secrets)
        except MissingVariable:
            return []
