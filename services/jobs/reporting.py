"""What workers and the job SDK call: claim queued jobs, and report many jobs' news in one batch."""

from __future__ import annotations

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
)
from services.jobs.service import JobEventSink, JobsService, LogRepository, clean_log_line

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
        worker = clean_text(worker_id, 200) or "worker"
        claimed = await self._repo.claim(worker, job_types, max_jobs)
        if claimed:
            await self._events.jobs_changed([(None, job, "started") for job in claimed])
        return claimed

    async def report(
        self, worker_id: str, reports: Sequence[JobReportIn], heartbeat_ids: Sequence[str]
    ) -> tuple[list[ReportResult], list[str]]:
        """Apply a batch; returns a result per report and the jobs whose cancellation was requested."""
        if len(reports) > MAX_REPORTS_PER_BATCH:
            raise InvalidArgumentError(f"at most {MAX_REPORTS_PER_BATCH} reports per batch (got {len(reports)})")
        results = {r.job_id: ReportResult(r.job_id) for r in reports}
        valid: list[JobReportIn] = []
        for report in reports:
            try:
                valid.append(self._validated(report))
            except DomainError as error:
                results[report.job_id] = ReportResult(report.job_id, False, error.message)

        valid = await self._start(worker_id, valid, results)
        changed = await self._repo.apply_progress([r.progress for r in valid if r.progress is not None])
        if changed:
            await self._events.jobs_changed([(None, job, "progress") for job in changed])
        stored = await self._logs.append([(r.job_id, line) for r in valid for line in r.logs])
        if stored:
            await self._events.logs_appended(stored)
        for report in valid:
            if report.steps:
                await self._logs.upsert_steps(report.job_id, report.steps)

        for report in valid:
            if report.outcome is None:
                continue
            try:
                job = await self._apply_outcome(report.job_id, report.outcome)
                results[report.job_id].status = job.status
            except DomainError as error:
                results[report.job_id] = ReportResult(report.job_id, False, error.message)

        running: dict[str, bool] = dict(
            await self._repo.heartbeat([*heartbeat_ids, *(r.job_id for r in valid)], worker_id)
        )
        for report in valid:
            result = results[report.job_id]
            # A start that was applied stays accepted even when someone finished the job right
            # after it; the job's next report is refused with the precise reason.
            if result.accepted and report.outcome is None and result.started is None and report.job_id not in running:
                result.accepted = False
                result.error = "the job is not running any more (finished, cancelled or reaped)"
        return list(results.values()), [job_id for job_id, cancel in running.items() if cancel]

    async def _start(
        self, worker_id: str, reports: list[JobReportIn], results: dict[str, ReportResult]
    ) -> list[JobReportIn]:
        """Start the jobs whose reports ask for it, first; returns the reports still valid."""
        valid = []
        for report in reports:
            if report.start_total is not None:
                try:
                    job = await self._jobs.start_job(report.job_id, worker_id, report.start_total)
                except DomainError as error:
                    results[report.job_id] = ReportResult(report.job_id, False, error.message)
                    continue
                results[report.job_id].started = job
                results[report.job_id].status = job.status
            valid.append(report)
        return valid

    def _validated(self, report: JobReportIn) -> JobReportIn:
        parse_job_id(report.job_id)
        if report.progress is not None:
            report.progress = self._jobs.validate_report(report.progress)
        if len(report.logs) > MAX_LOG_LINES_PER_REPORT:
            raise InvalidArgumentError(f"at most {MAX_LOG_LINES_PER_REPORT} log lines per report")
        report.logs = [clean_log_line(line) for line in report.logs]
        return report

    async def _apply_outcome(self, job_id: str, outcome: Outcome) -> Job:
        if outcome.kind == "completed":
            return await self._jobs.complete_job(job_id, outcome.message, idempotent=True)
        if outcome.kind == "failed":
            return await self._jobs.fail_job(
                job_id,
                outcome.message or "failed without a message",
                outcome.error_category,
                outcome.error_class,
                outcome.stack_trace,
                idempotent=True,
            )
        return await self._jobs.confirm_cancelled(job_id, outcome.message)
