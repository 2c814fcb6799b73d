"""Use cases of the jobs service: lifecycle, control (cancel, retry), reads. No transport here."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.common.errors import DomainError, FailedPreconditionError, InvalidArgumentError
from services.common.logging import get_logger
from services.jobs.domain import (
    DEFAULT_PAGE_SIZE,
    MAX_ATTEMPTS_LIMIT,
    MAX_ERROR_MESSAGE,
    MAX_LOG_MESSAGE,
    MAX_PAGE_SIZE,
    MAX_PROGRESS_MESSAGE,
    MAX_STACK_TRACE,
    WORKER_LOST,
    ErrorClass,
    Job,
    JobFilter,
    JobPage,
    JobStatus,
    JobStep,
    LogLevel,
    LogLine,
    ProgressCounts,
    ProgressReport,
    RetryPolicy,
    SortField,
    StepUpdate,
    StoredLog,
    check_count,
    check_no_nul,
    check_owner,
    check_transition,
    clean_json,
    clean_text,
    parse_job_id,
    reaped_from,
    validate_category,
    validate_job_type,
    validate_tenant,
    validate_worker,
)

log = get_logger(__name__)
ID_PREFIX = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{3,35}$")


class JobRepository(Protocol):
    async def insert(self, job: Job, idempotency_key: str | None) -> tuple[Job, bool]: ...
    async def get(self, job_id: str) -> Job: ...
    async def modify(self, job_id: str, change: Callable[[Job], dict[str, Any] | None]) -> tuple[Job, Job]: ...
    async def page(
        self, flt: JobFilter, sort: SortField, descending: bool, page_size: int, cursor: str | None
    ) -> JobPage: ...
    async def count_by_status(self, flt: JobFilter) -> dict[JobStatus, int]: ...
    async def attempts(self, root_job_id: str) -> list[Job]: ...
    async def apply_progress(self, reports: Sequence[ProgressReport]) -> list[Job]: ...
    async def start_queued(
        self, starts: Sequence[tuple[str, int]], worker_id: str | None, now: datetime
    ) -> list[Job]: ...
    async def complete_running(
        self, completions: Sequence[tuple[str, str]], worker_id: str, now: datetime
    ) -> list[Job]: ...


class LogRepository(Protocol):
    async def append(self, lines: Sequence[tuple[str, LogLine]]) -> list[StoredLog]: ...
    async def read(
        self,
        job_id: str,
        *,
        after_sequence: int = 0,
        tail: int = 0,
        limit: int = 1000,
        min_level: LogLevel | None = None,
        text: str = "",
    ) -> tuple[list[StoredLog], int]: ...
    async def upsert_steps(self, job_id: str, steps: Sequence[StepUpdate]) -> None: ...
    async def steps(self, job_id: str) -> list[JobStep]: ...
    async def note(
        self, job_id: str, level: LogLevel, message: str, context: dict[str, object]
    ) -> StoredLog | None: ...


# (hop name, Unix nanoseconds): the moments a worker's report passed on its way to becoming an event
# (docs/adr/0021-live-path.md); the events it causes carry them so the live path can be measured.
Hop = tuple[str, int]


class JobEventSink(Protocol):
    """Where state changes are announced (Redis pub/sub in production)."""

    async def job_changed(self, before: Job | None, after: Job, change: str) -> None: ...
    async def jobs_changed(self, changes: Sequence[tuple[Job | None, Job, str]], hops: Sequence[Hop] = ()) -> None: ...
    async def logs_appended(self, lines: Sequence[StoredLog]) -> None: ...


# A late outcome replaces the reap's presumption of a lost worker.
_NO_ERROR: dict[str, Any] = {"error_message": None, "error_category": None, "error_class": None}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewJob:
    job_type: str
    tenant_id: str = ""
    parameters: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    max_attempts: int = 0
    idempotency_key: str = ""
    created_by: str = ""
    total_items: int = 0


@dataclass(frozen=True)
class JobDetails:
    job: Job
    attempts: list[Job]


def clean_log_line(line: LogLine) -> LogLine:
    """Masked, escaped and truncated with a visible marker: what may be stored and shown."""
    if line.sequence < 1:
        raise InvalidArgumentError(f"log sequence must be 1 or more (got {line.sequence})")
    check_count("log sequence", line.sequence)
    return LogLine(
        sequence=line.sequence,
        level=line.level,
        message=clean_text(line.message, MAX_LOG_MESSAGE),
        timestamp=line.timestamp,
        stack_trace=clean_text(line.stack_trace, MAX_STACK_TRACE) if line.stack_trace else "",
        context=clean_json(line.context, "log context", escape=True),
    )


class JobsService:
    """Job lifecycle: create, start, progress, complete, fail, cancel, retry; reads."""

    def __init__(
        self,
        repository: JobRepository,
        events: JobEventSink,
        logs: LogRepository,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._repo = repository
        self._events = events
        self._logs = logs
        self.retry_policy = retry_policy or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    # -- creation and the normal lifecycle ------------------------------------------------------

    async def create_job(self, new: NewJob) -> Job:
        job_type = validate_job_type(new.job_type)
        tenant = validate_tenant(new.tenant_id)
        if not 0 <= new.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise InvalidArgumentError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        check_count("total_items", new.total_items)
        if len(new.idempotency_key) > 200:
            raise InvalidArgumentError("idempotency_key is longer than 200 characters")
        check_no_nul("idempotency_key", new.idempotency_key)
        now = self._clock()
        job_id = str(uuid.uuid4())
        job = Job(
            id=job_id,
            job_type=job_type,
            tenant_id=tenant,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            parameters=clean_json(new.parameters or {}, "parameters"),
            metadata=clean_json(new.metadata or {}, "metadata"),
            max_attempts=new.max_attempts or self.retry_policy.max_attempts(job_type),
            root_job_id=job_id,
            created_by=clean_text(new.created_by, 200),
            total_items=new.total_items,
        )
        stored, created = await self._repo.insert(job, new.idempotency_key or None)
        if created:
            log.info("job created", job_id=stored.id, job_type=job_type, tenant_id=tenant)
            await self._events.job_changed(None, stored, "created")
        return stored

    async def start_job(self, job_id: str, worker_id: str, total_items: int = 0) -> Job:
        check_count("total_items", total_items)
        worker = validate_worker(worker_id)
        now = self._clock()

        def change(job: Job) -> dict[str, Any] | None:
            if job.status is JobStatus.RUNNING and job.worker_id == (worker or None):
                return None  # a resent start from the same worker changes nothing
            check_transition(job.id, job.status, JobStatus.RUNNING)
            fields: dict[str, Any] = {
                "status": JobStatus.RUNNING,
                "worker_id": worker or None,
                "started_at": now,
                "updated_at": now,
                "last_heartbeat_at": now,
                "progress_updated_at": now,
            }
            if total_items:
                fields["total_items"] = total_items
            return fields

        before, after = await self._repo.modify(job_id, change)
        if after is not before:
            log.info("job started", job_id=job_id, worker_id=worker)
            await self._events.job_changed(before, after, "started")
        return after

    async def start_jobs(self, starts: Sequence[tuple[str, int]], worker_id: str) -> dict[str, Job | DomainError]:
        """`start_job` for many jobs (a worker's ReportBatch): the queued ones in one statement and one
        publication, the rest (resent starts, finished or unknown jobs) one by one with `start_job`'s answers."""
        worker = validate_worker(worker_id)
        results: dict[str, Job | DomainError] = {}
        valid: list[tuple[str, int]] = []
        for job_id, total in starts:
            try:
                check_count("total_items", total)
                parse_job_id(job_id)
            except DomainError as error:
                results[job_id] = error
                continue
            valid.append((job_id, total))
        started = await self._repo.start_queued(valid, worker or None, self._clock()) if valid else []
        for job in started:
            results[job.id] = job
        if started:
            log.info("jobs started", worker_id=worker, count=len(started), job_ids=[j.id for j in started])
            await self._events.jobs_changed([(replace(j, status=JobStatus.QUEUED), j, "started") for j in started])
        for job_id, total in valid:
            if job_id not in results:
                try:
                    results[job_id] = await self.start_job(job_id, worker_id, total)
                except DomainError as error:
                    results[job_id] = error
        return results

    @staticmethod
    def validate_report(report: ProgressReport) -> ProgressReport:
        report.counts.validate()
        check_count("sequence", report.sequence)
        return ProgressReport(
            report.job_id, report.counts, clean_text(report.message, MAX_PROGRESS_MESSAGE), report.sequence
        )

    async def report_progress(
        self, job_id: str, counts: ProgressCounts, message: str = "", sequence: int = 0, worker: str = ""
    ) -> tuple[Job, bool]:
        """Apply a progress report of `worker` (the job's owner); returns (job, applied). Stale or repeated
        sequences change nothing."""
        report = self.validate_report(ProgressReport(job_id, counts, message, sequence))
        check_owner(await self._repo.get(job_id), worker)
        changed = await self._repo.apply_progress([report])
        if changed:
            await self._events.job_changed(None, changed[0], "progress")
            return changed[0], True
        job = await self._repo.get(job_id)
        if job.status is not JobStatus.RUNNING:
            hint = "start it first" if job.status is JobStatus.QUEUED else "it has already finished"
            raise FailedPreconditionError(
                f"job {job.id} is {job.status.value}; progress can only be reported while RUNNING ({hint})"
            )
        if counts.total == 0 and job.total_items and counts.processed > job.total_items:
            raise InvalidArgumentError(
                f"processed_items ({counts.processed}) is beyond total_items ({job.total_items})"
            )
        return job, False

    async def complete_job(self, job_id: str, message: str = "", *, worker: str, idempotent: bool = False) -> Job:
        """RUNNING → COMPLETED, by the worker running it. With `idempotent`, completing a completed job is a
        no-op (SDK resends)."""
        text = clean_text(message, MAX_PROGRESS_MESSAGE)
        now = self._clock()

        def change(job: Job) -> dict[str, Any] | None:
            check_owner(job, worker)
            if idempotent and job.status is JobStatus.COMPLETED:
                return None
            late = reaped_from(job, worker)
            if not late:
                check_transition(job.id, job.status, JobStatus.COMPLETED)
            return {
                "status": JobStatus.COMPLETED,
                "completed_at": now,
                "updated_at": now,
                "progress_percent": 100.0,
                "eta_seconds": 0.0,
                "progress_message": text or job.progress_message,
                **(_NO_ERROR if late else {}),
            }

        before, after = await self._repo.modify(job_id, change)
        if after is not before:
            log.info("job completed", job_id=job_id)
            await self._events.job_changed(before, after, "completed")
            await self._settle_late_outcome(before, after)
        return after

    async def complete_jobs(
        self, completions: Sequence[tuple[str, str]], worker_id: str
    ) -> dict[str, Job | DomainError]:
        """`complete_job` (idempotent) for many jobs of one worker (a ReportBatch): the running ones in one
        statement and one publication, the rest one by one with `complete_job`'s answers."""
        worker = validate_worker(worker_id)
        results: dict[str, Job | DomainError] = {}
        cleaned = [(job_id, clean_text(message, MAX_PROGRESS_MESSAGE)) for job_id, message in completions]
        done = await self._repo.complete_running(cleaned, worker, self._clock()) if worker and cleaned else []
        for job in done:
            results[job.id] = job
        if done:
            log.info("jobs completed", worker_id=worker, count=len(done), job_ids=[j.id for j in done])
            await self._events.jobs_changed([(replace(j, status=JobStatus.RUNNING), j, "completed") for j in done])
        for job_id, message in completions:
            if job_id not in results:
                try:
                    results[job_id] = await self.complete_job(job_id, message, worker=worker_id, idempotent=True)
                except DomainError as error:
                    results[job_id] = error
        return results

    async def fail_job(
        self,
        job_id: str,
        error_message: str,
        error_category: str = "",
        error_class: ErrorClass | None = None,
        stack_trace: str = "",
        *,
        worker: str,
        idempotent: bool = False,
    ) -> Job:
        """QUEUED/RUNNING → FAILED, by the worker running it (anyone for a queued job); a transient failure
        with attempts left queues the next attempt."""
        if not error_message.strip():
            raise InvalidArgumentError("error_message is required to fail a job")
        category = validate_category(error_category)
        now = self._clock()

        def change(job: Job) -> dict[str, Any] | None:
            check_owner(job, worker)
            late = reaped_from(job, worker)
            if idempotent and job.status is JobStatus.FAILED and not late:
                return None
            if not late:
                check_transition(job.id, job.status, JobStatus.FAILED)
            return {
                "status": JobStatus.FAILED,
                "completed_at": now,
                "updated_at": now,
                "eta_seconds": None,
                "error_message": clean_text(error_message, MAX_ERROR_MESSAGE),
                "error_category": category or None,
                "error_class": error_class or ErrorClass.PERMANENT,
                "error_stack_trace": clean_text(stack_trace, MAX_STACK_TRACE) if stack_trace else None,
            }

        before, after = await self._repo.modify(job_id, change)
        if after is before:
            return after
        log.info("job failed", job_id=job_id, category=category, error_class=str(after.error_class))
        await self._events.job_changed(before, after, "failed")
        if before.status is JobStatus.FAILED:  # the owner's own failure replaced a reap's presumption
            if not self.retry_policy.retries_automatically(after):
                await self._settle_late_outcome(before, after)
            return after
        if self.retry_policy.retries_automatically(after):
            delay = self.retry_policy.delay(after.attempt, self._rng.random())
            await self._new_attempt(after, available_at=now + timedelta(seconds=delay), created_by="automatic retry")
        return after

    async def reap(self, job_id: str, heartbeat_before: datetime) -> Job | None:
        """Fail (or, after a cancel request, cancel) a running job whose worker stopped heartbeating.

        Re-checked under the row lock, so a heartbeat that just arrived, or another replica's reaper,
        wins. A worker-lost failure is transient: the retry policy applies.
        """
        now = self._clock()
        outcome: dict[str, str] = {}

        def change(job: Job) -> dict[str, Any] | None:
            if job.status is not JobStatus.RUNNING or not job.last_heartbeat_at:
                return None
            if job.last_heartbeat_at >= heartbeat_before:
                return None
            silent = int((now - job.last_heartbeat_at).total_seconds())
            if job.cancel_requested:
                outcome["change"] = "cancelled"
                return {"status": JobStatus.CANCELLED, "completed_at": now, "updated_at": now, "eta_seconds": None}
            outcome["change"] = "failed"
            return {
                "status": JobStatus.FAILED, "completed_at": now, "updated_at": now, "eta_seconds": None,
                "error_message": f"worker {job.worker_id or '(unnamed)'} stopped sending heartbeats {silent} s ago "
                                 "and is presumed lost",
                "error_category": "WORKER_LOST", "error_class": ErrorClass.TRANSIENT,
            }  # fmt: skip

        before, after = await self._repo.modify(job_id, change)
        if after is before:
            return None
        log.warning("job reaped", job_id=job_id, worker_id=before.worker_id, outcome=outcome["change"])
        await self._events.job_changed(before, after, outcome["change"])
        note = await self._logs.note(
            job_id,
            LogLevel.ERROR if after.status is JobStatus.FAILED else LogLevel.WARNING,
            (after.error_message or "") if after.status is JobStatus.FAILED else
            f"worker {before.worker_id or '(unnamed)'} went silent after a cancel request; the job is cancelled",
            {"reaped": True, "worker_id": before.worker_id or "", "outcome": outcome["change"]},
        )  # fmt: skip
        if note is not None:
            await self._events.logs_appended([note])
        if self.retry_policy.retries_automatically(after):
            delay = self.retry_policy.delay(after.attempt, self._rng.random())
            await self._new_attempt(after, available_at=now + timedelta(seconds=delay), created_by="automatic retry")
        return after

    # -- control ----------------------------------------------------------------------------------

    async def cancel_job(self, job_id: str, reason: str = "", requested_by: str = "") -> Job:
        """A queued job is cancelled at once; a running one is asked to stop (its worker confirms)."""
        text = clean_text(reason or f"cancelled by {requested_by or 'an operator'}", 500)
        now = self._clock()

        def change(job: Job) -> dict[str, Any] | None:
            if job.status is JobStatus.QUEUED:
                return {"status": JobStatus.CANCELLED, "completed_at": now, "updated_at": now,
                        "cancel_requested": True, "cancel_reason": text, "eta_seconds": None}  # fmt: skip
            if job.status is JobStatus.RUNNING:
                if job.cancel_requested:
                    return None
                return {"cancel_requested": True, "cancel_reason": text, "updated_at": now}
            raise FailedPreconditionError(
                f"job {job.id} has already finished ({job.status.value}); there is nothing to cancel"
            )

        before, after = await self._repo.modify(job_id, change)
        if after is not before:
            what = "cancelled" if after.status is JobStatus.CANCELLED else "cancel_requested"
            log.info("job cancel", job_id=job_id, outcome=what, requested_by=requested_by)
            await self._events.job_changed(before, after, what)
        return after

    async def confirm_cancelled(self, job_id: str, message: str = "", *, worker: str) -> Job:
        """The worker stopped a job after a cancel request (or on its own): RUNNING → CANCELLED."""
        now = self._clock()

        def change(job: Job) -> dict[str, Any] | None:
            check_owner(job, worker)
            if job.status is JobStatus.CANCELLED:
                return None
            late = reaped_from(job, worker)
            if not late:
                check_transition(job.id, job.status, JobStatus.CANCELLED)
            reason = job.cancel_reason or clean_text(message or "stopped by its worker", 500)
            return {"status": JobStatus.CANCELLED, "completed_at": now, "updated_at": now, "eta_seconds": None,
                    "cancel_reason": reason, **(_NO_ERROR if late else {})}  # fmt: skip

        before, after = await self._repo.modify(job_id, change)
        if after is not before:
            await self._events.job_changed(before, after, "cancelled")
            await self._settle_late_outcome(before, after)
        return after

    async def _settle_late_outcome(self, before: Job, after: Job) -> None:
        """After the owner's outcome replaced a reap's presumption: its queued retry must not run the work again."""
        if before.status is not JobStatus.FAILED or before.error_category != WORKER_LOST:
            return
        log.warning("late outcome accepted after a reap", job_id=after.id, worker_id=after.worker_id,
                    status=after.status.value)  # fmt: skip
        if not before.retried_by_job_id:
            return
        retry = await self._repo.get(before.retried_by_job_id)
        if retry.status is JobStatus.QUEUED:
            await self.cancel_job(
                retry.id,
                f"attempt {after.attempt} ended {after.status.value} after it was presumed lost",
                requested_by="jobs service",
            )
        else:
            log.warning("the retry of a late-finished attempt already runs", job_id=after.id, retry_id=retry.id)

    async def retry_job(self, job_id: str, requested_by: str = "") -> tuple[Job, bool]:
        """A new attempt of a failed or cancelled job with the same parameters; returns (attempt, created).

        Retrying a job that was already retried returns that earlier attempt with created=False, so two
        clicks at once make one new attempt.
        """
        job = await self._repo.get(job_id)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise FailedPreconditionError(
                f"job {job.id} is {job.status.value}; only FAILED or CANCELLED jobs can be retried"
            )
        if job.retried_by_job_id:
            return await self._repo.get(job.retried_by_job_id), False
        return await self._new_attempt(job, available_at=None, created_by=requested_by or "manual retry")

    async def _new_attempt(self, job: Job, available_at: datetime | None, created_by: str) -> tuple[Job, bool]:
        now = self._clock()
        attempt = Job(
            id=str(uuid.uuid4()),
            job_type=job.job_type,
            tenant_id=job.tenant_id,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            parameters=job.parameters,
            metadata=job.metadata,
            attempt=job.attempt + 1,
            max_attempts=max(job.max_attempts, job.attempt + 1),
            root_job_id=job.root_job_id,
            retry_of_job_id=job.id,
            created_by=clean_text(created_by, 200),
            total_items=job.total_items,
            available_at=available_at,
        )
        stored, created = await self._repo.insert(attempt, None)
        if created:
            log.info("job retried", job_id=job.id, attempt_id=stored.id, attempt=stored.attempt,
                     available_at=str(available_at) if available_at else "now")  # fmt: skip
            await self._events.job_changed(None, stored, "retry_queued")
        return stored, created

    # -- reads --------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        job = await self._repo.get(job_id)
        job.steps = await self._logs.steps(job_id)
        return job

    async def get_details(self, job_id: str) -> JobDetails:
        job = await self.get_job(job_id)
        return JobDetails(job, await self._repo.attempts(job.root_job_id))

    async def list_jobs(
        self,
        flt: JobFilter,
        sort: SortField = SortField.CREATED_AT,
        descending: bool = True,
        page_size: int = 0,
        cursor: str | None = None,
    ) -> JobPage:
        self._check_filter(flt)
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgumentError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})")
        return await self._repo.page(flt, sort, descending, page_size or DEFAULT_PAGE_SIZE, cursor)

    async def count_jobs(self, flt: JobFilter) -> dict[JobStatus, int]:
        self._check_filter(flt)
        return await self._repo.count_by_status(flt)

    @staticmethod
    def _check_filter(flt: JobFilter) -> None:
        if flt.created_after and flt.created_before and flt.created_after >= flt.created_before:
            raise InvalidArgumentError("the created time range is empty: start must be before end")
        for tenant in flt.tenant_ids:
            validate_tenant(tenant)
        if len(flt.text) > 200:
            raise InvalidArgumentError("text filter is longer than 200 characters")
        check_no_nul("text filter", flt.text)
        if flt.id_prefix and not ID_PREFIX.match(flt.id_prefix):
            raise InvalidArgumentError("id prefix must be 4 to 36 characters of hex digits and dashes")

    async def read_logs(
        self,
        job_id: str,
        *,
        after_sequence: int = 0,
        tail: int = 0,
        limit: int = 0,
        min_level: LogLevel | None = None,
        text: str = "",
    ) -> tuple[list[StoredLog], int]:
        if tail < 0 or tail > 10_000 or limit < 0 or limit > 10_000 or after_sequence < 0:
            raise InvalidArgumentError("tail and limit must be between 0 and 10000, after_sequence >= 0")
        check_count("after_sequence", after_sequence)
        check_no_nul("text", text)
        await self._repo.get(job_id)  # NOT_FOUND for unknown jobs rather than an empty list
        return await self._logs.read(
            job_id, after_sequence=after_sequence, tail=tail, limit=limit or 1000, min_level=min_level,
            text=text.strip()[:200],
        )  # fmt: skip
