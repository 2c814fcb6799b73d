"""What workers and the job SDK call: claim queued jobs, and report many jobs' news in one batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.common.errors import DomainError, InvalidArgumentError
from services.common.logging import get_logger
from services.jobs.domain import (
    MAX_LOG_LINES_PER_REPORT,
    ErrorClass,
    Job,
    JobStatus,
    LogLine,
    ProgressReport,
    StepUpdate,
    clean_text,
    parse_job_id,
    validate_job_type,
    validate_worker,
)
from services.jobs.service import Hop, JobEventSink, JobsService, LogRepository, clean_log_line

log = get_logger(__name__)
MAX_CLAIM = 100
MAX_REPORTS_PER_BATCH = 2000


@dataclass(frozen=True)
class Outcome:
    kind: str  # "completed" | "failed" | "cancelled"
    message: str = ""
    error_category: str = ""
    error_class: ErrorClass | None = None
    stack_trace: str = ""


@dataclass
class JobReportIn:
    job_id: str
    progress: ProgressReport | None = None
    logs: list[LogLine] = field(default_factory=list)
    steps: list[StepUpdate] = field(default_factory=list)
    outcome: Outcome | None = None
    # Start the job first, with this total (0 keeps the stored one); None: no start in this report.
    start_total: int | None = None


@dataclass
class ReportResult:
    job_id: str
    accepted: bool = True
    error: str = ""
    status: JobStatus | None = None
    started: Job | None = None  # the job after the start, when the report started it


class WorkerRepository(Protocol):
    """What claims and batched reports need of the job store, beyond the jobs service's own use cases."""

    async def claim(self, worker_id: str, job_types: Sequence[str], limit: int) -> list[Job]: ...
    async def apply_progress(self, reports: Sequence[ProgressReport]) -> list[Job]: ...
    async def heartbeat(self, job_ids: Sequence[str], worker_id: str) -> list[tuple[str, bool]]: ...
    async def owners(self, job_ids: Sequence[str]) -> dict[str, str | None]: ...


class WorkerReporting:
    """Claims and batched reports, built on the jobs service's rules."""

    def __init__(
        self, jobs: JobsService, repository: WorkerRepository, logs: LogRepository, events: JobEventSink
    ) -> None:
        self._jobs = jobs
        self._repo = repository
        self._logs = logs
        self._events = events

    async def claim(self, worker_id: str, job_types: Sequence[str], max_jobs: int) -> list[Job]:
        if not job_types:
            raise InvalidArgumentError("job_types is required: name the job types this worker runs")
        for job_type in job_types:
            validate_job_type(job_type)
        if not 1 <= max_jobs <= MAX_CLAIM:
            raise InvalidArgumentError(f"max_jobs must be between 1 and {MAX_CLAIM} (got {max_jobs})")
        worker = validate_worker(worker_id)
        claimed = await self._repo.claim(worker, job_types, max_jobs)
        if claimed:
            await self._events.jobs_changed([(None, job, "started") for job in claimed])
        return claimed

    async def report(
        self, worker_id: str, reports: Sequence[JobReportIn], heartbeat_ids: Sequence[str], hops: Sequence[Hop] = ()
    ) -> tuple[list[ReportResult], list[str]]:
        """Apply a batch; returns a result per report and the jobs whose cancellation was requested.

        `hops`: the moments the batch passed so far (worker, receipt); the progress events it causes
        carry them, with the moment the progress was committed, to measure the live path."""
        if len(reports) > MAX_REPORTS_PER_BATCH:
            raise InvalidArgumentError(f"at most {MAX_REPORTS_PER_BATCH} reports per batch (got {len(reports)})")
        worker_id = validate_worker(worker_id)
        results = {r.job_id: ReportResult(r.job_id) for r in reports}
        valid: list[JobReportIn] = []
        for report in reports:
            try:
                valid.append(self._validated(report))
            except DomainError as error:
                results[report.job_id] = ReportResult(report.job_id, False, error.message)
        valid = await self._owned(worker_id, valid, results)

        valid = await self._start(worker_id, valid, results)
        changed = await self._repo.apply_progress([r.progress for r in valid if r.progress is not None])
        if changed:
            committed = [*hops, ("jobs_committed", time.time_ns())] if hops else ()
            await self._events.jobs_changed([(None, job, "progress") for job in changed], committed)
        stored = await self._logs.append([(r.job_id, line) for r in valid for line in r.logs])
        if stored:
            await self._events.logs_appended(stored)
        for report in valid:
            if report.steps:
                await self._logs.upsert_steps(report.job_id, report.steps)

        await self._finish(worker_id, valid, results)

        # Applying progress refreshed those jobs' heartbeats and read their cancel flags already: one
        # UPDATE of a thousand rows less for a batch of progress (docs/adr/0021-live-path.md).
        ending = {r.job_id for r in valid if r.outcome is not None}
        fresh = {job.id: job.cancel_requested for job in changed if job.id not in ending}
        beating = [
            job_id for job_id in dict.fromkeys([*heartbeat_ids, *(r.job_id for r in valid)]) if job_id not in fresh
        ]
        running: dict[str, bool] = {**fresh, **dict(await self._repo.heartbeat(beating, worker_id))}
        for report in valid:
            result = results[report.job_id]
            # A start that was applied stays accepted even when someone finished the job right
            # after it; the job's next report is refused with the precise reason.
            if result.accepted and report.outcome is None and result.started is None and report.job_id not in running:
                result.accepted = False
                result.error = "the job is not running any more (finished, cancelled or reaped)"
        return list(results.values()), [job_id for job_id, cancel in running.items() if cancel]

    async def _finish(self, worker_id: str, reports: list[JobReportIn], results: dict[str, ReportResult]) -> None:
        """Apply the outcomes: completions of running jobs all together, the rest one by one."""
        completions = [(r.job_id, r.outcome.message) for r in reports if r.outcome and r.outcome.kind == "completed"]
        completed = await self._jobs.complete_jobs(completions, worker_id) if completions else {}
        for job_id, answer in completed.items():
            if isinstance(answer, DomainError):
                results[job_id] = ReportResult(job_id, False, answer.message)
            else:
                results[job_id].status = answer.status
        for report in reports:
            if report.outcome is None or report.job_id in completed:
                continue
            try:
                job = await self._apply_outcome(worker_id, report.job_id, report.outcome)
                results[report.job_id].status = job.status
            except DomainError as error:
                results[report.job_id] = ReportResult(report.job_id, False, error.message)

    async def _owned(
        self, worker_id: str, reports: list[JobReportIn], results: dict[str, ReportResult]
    ) -> list[JobReportIn]:
        """The reports for jobs this worker runs (or that nobody runs yet); the others are refused."""
        owners = await self._repo.owners([r.job_id for r in reports])
        mine = []
        for report in reports:
            owner = owners.get(report.job_id)
            if owner and owner != worker_id:
                results[report.job_id] = ReportResult(
                    report.job_id, False, f"job {report.job_id} is run by worker {owner}, not {worker_id}"
                )
            else:
                mine.append(report)
        return mine

    async def _start(
        self, worker_id: str, reports: list[JobReportIn], results: dict[str, ReportResult]
    ) -> list[JobReportIn]:
        """Start the jobs whose reports ask for it, first, all together; returns the reports still valid."""
        starts = [(r.job_id, r.start_total) for r in reports if r.start_total is not None]
        if not starts:
            return reports
        started = await self._jobs.start_jobs(starts, worker_id)
        valid = []
        for report in reports:
            outcome = started.get(report.job_id) if report.start_total is not None else None
            if isinstance(outcome, DomainError):
                results[report.job_id] = ReportResult(report.job_id, False, outcome.message)
                continue
            if outcome is not None:
                results[report.job_id].started = outcome
                results[report.job_id].status = outcome.status
            valid.append(report)
        return valid

    def _validated(self, report: JobReportIn) -> JobReportIn:
        parse_job_id(report.job_id)
        if report.progress is not None:
            report.progress = self._jobs.validate_report(report.progress)
        if len(report.logs) > MAX_LOG_LINES_PER_REPORT:
            raise InvalidArgumentError(f"at most {MAX_LOG_LINES_PER_REPORT} log lines per report")
        report.logs = [clean_log_line(line) for line in report.logs]
        report.steps = [clean_step(step) for step in report.steps]
        return report

    async def _apply_outcome(self, worker_id: str, job_id: str, outcome: Outcome) -> Job:
        if outcome.kind == "completed":
            return await self._jobs.complete_job(job_id, outcome.message, worker=worker_id, idempotent=True)
        if outcome.kind == "failed":
            return await self._jobs.fail_job(
                job_id,
                outcome.message or "failed without a message",
                outcome.error_category,
                outcome.error_class,
                outcome.stack_trace,
                worker=worker_id,
                idempotent=True,
            )
        return await self._jobs.confirm_cancelled(job_id, outcome.message, worker=worker_id)


def clean_step(step: StepUpdate) -> StepUpdate:
    """A step's name and message masked and escaped like log lines; its index a valid position."""
    if not 0 <= step.index <= 10_000:
        raise InvalidArgumentError(f"step index must be between 0 and 10000 (got {step.index})")
    return StepUpdate(step.index, clean_text(step.name, 200), step.status, clean_text(step.message, 500), step.at)
