"""gRPC transport of the jobs service: protobuf ⇄ domain, nothing else.

Domain errors raised below are mapped to status codes by the server's interceptor.
"""

from __future__ import annotations

import time

from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from services.common.errors import DomainError
from services.common.grpc_server import ServicerContext
from services.common.protoconv import from_struct
from services.jobs.convert import (
    STATUS_TO_PROTO,
    error_class_from_proto,
    filter_from_proto,
    job_to_proto,
    level_from_proto,
    log_to_proto,
    outcome_counts_to_proto,
    report_from_proto,
    sort_from_proto,
)
from services.jobs.domain import ProgressCounts
from services.jobs.reporting import JobReportIn, Outcome, ReportResult, WorkerReporting
from services.jobs.service import JobsService, NewJob
from services.jobs.trends.service import JobTrends

SERVICE_NAME = jobs_pb2.DESCRIPTOR.services_by_name["JobsService"].full_name


def _outcome(report: jobs_pb2.JobReport) -> Outcome | None:
    kind = report.WhichOneof("outcome")
    if kind == "completed":
        return Outcome("completed", report.completed.message)
    if kind == "failed":
        f = report.failed
        return Outcome(
            "failed", f.error_message, f.error_category, error_class_from_proto(f.error_class), f.stack_trace
        )
    if kind == "cancelled":
        return Outcome("cancelled", report.cancelled.message)
    return None


class JobsServicer(jobs_pb2_grpc.JobsServiceServicer):
    def __init__(self, service: JobsService, reporting: WorkerReporting, trends: JobTrends) -> None:
        self._service = service
        self._reporting = reporting
        self._trends = trends

    async def CreateJob(
        self, request: jobs_pb2.CreateJobRequest, context: ServicerContext
    ) -> jobs_pb2.CreateJobResponse:
        job = await self._service.create_job(
            NewJob(
                job_type=request.job_type,
                tenant_id=request.tenant_id,
                parameters=from_struct(request.parameters),
                metadata=from_struct(request.metadata),
                max_attempts=request.max_attempts,
                idempotency_key=request.idempotency_key,
                created_by=request.created_by,
                total_items=request.total_items,
            )
        )
        return jobs_pb2.CreateJobResponse(job=job_to_proto(job))

    async def StartJob(self, request: jobs_pb2.StartJobRequest, context: ServicerContext) -> jobs_pb2.StartJobResponse:
        job = await self._service.start_job(request.job_id, request.worker_id, request.total_items)
        return jobs_pb2.StartJobResponse(job=job_to_proto(job))

    async def ReportProgress(
        self, request: jobs_pb2.ReportProgressRequest, context: ServicerContext
    ) -> jobs_pb2.ReportProgressResponse:
        counts = ProgressCounts(
            request.total_items, request.processed_items, request.succeeded_items, request.failed_items
        )
        job, applied = await self._service.report_progress(
            request.job_id, counts, request.message, request.sequence, request.worker_id
        )
        return jobs_pb2.ReportProgressResponse(job=job_to_proto(job), applied=applied)

    async def CompleteJob(
        self, request: jobs_pb2.CompleteJobRequest, context: ServicerContext
    ) -> jobs_pb2.CompleteJobResponse:
        job = await self._service.complete_job(request.job_id, request.message, worker=request.worker_id)
        return jobs_pb2.CompleteJobResponse(job=job_to_proto(job))

    async def FailJob(self, request: jobs_pb2.FailJobRequest, context: ServicerContext) -> jobs_pb2.FailJobResponse:
        job = await self._service.fail_job(
            request.job_id,
            request.error_message,
            request.error_category,
            error_class_from_proto(request.error_class),
            request.stack_trace,
            worker=request.worker_id,
        )
        return jobs_pb2.FailJobResponse(job=job_to_proto(job, detail=True))

    async def GetJob(self, request: jobs_pb2.GetJobRequest, context: ServicerContext) -> jobs_pb2.GetJobResponse:
        job = await self._service.get_job(request.job_id)
        return jobs_pb2.GetJobResponse(job=job_to_proto(job, detail=True))

    async def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: ServicerContext) -> jobs_pb2.ListJobsResponse:
        sort, descending = sort_from_proto(request.sort_by, request.direction)
        page = await self._service.list_jobs(
            filter_from_proto(request.filter),
            sort,
            descending,
            request.page.page_size,
            request.page.page_token or None,
        )
        response = jobs_pb2.ListJobsResponse(jobs=[job_to_proto(j) for j in page.jobs])
        response.page_info.total_count = page.total_count
        response.page_info.has_next_page = page.next_cursor is not None
        response.page_info.next_page_token = page.next_cursor or ""
        return response

    async def CountJobs(
        self, request: jobs_pb2.CountJobsRequest, context: ServicerContext
    ) -> jobs_pb2.CountJobsResponse:
        counts = await self._service.count_jobs(filter_from_proto(request.filter))
        return jobs_pb2.CountJobsResponse(
            counts=[jobs_pb2.StatusCount(status=STATUS_TO_PROTO[s], count=n) for s, n in counts.items()]
        )

    async def GetJobDetails(
        self, request: jobs_pb2.GetJobDetailsRequest, context: ServicerContext
    ) -> jobs_pb2.GetJobDetailsResponse:
        details = await self._service.get_details(request.job_id)
        return jobs_pb2.GetJobDetailsResponse(
            job=job_to_proto(details.job, detail=True), attempts=[job_to_proto(a) for a in details.attempts]
        )

    async def ListJobLogs(
        self, request: jobs_pb2.ListJobLogsRequest, context: ServicerContext
    ) -> jobs_pb2.ListJobLogsResponse:
        min_level = level_from_proto(request.min_level) if request.min_level else None
        logs, last = await self._service.read_logs(
            request.job_id,
            after_sequence=request.after_sequence,
            tail=request.tail,
            limit=request.limit,
            min_level=min_level,
            text=request.text,
        )
        return jobs_pb2.ListJobLogsResponse(logs=[log_to_proto(line) for line in logs], last_sequence=last)

    async def CancelJob(
        self, request: jobs_pb2.CancelJobRequest, context: ServicerContext
    ) -> jobs_pb2.CancelJobResponse:
        job = await self._service.cancel_job(request.job_id, request.reason, request.requested_by)
        return jobs_pb2.CancelJobResponse(job=job_to_proto(job))

    async def RetryJob(self, request: jobs_pb2.RetryJobRequest, context: ServicerContext) -> jobs_pb2.RetryJobResponse:
        job, created = await self._service.retry_job(request.job_id, request.requested_by)
        return jobs_pb2.RetryJobResponse(job=job_to_proto(job), created=created)

    async def GetJobTrend(
        self, request: jobs_pb2.GetJobTrendRequest, context: ServicerContext
    ) -> jobs_pb2.GetJobTrendResponse:
        trend = await self._trends.trend(request.days, list(request.tenant_ids))
        return jobs_pb2.GetJobTrendResponse(
            days=[
                jobs_pb2.JobTrendDay(date=day.isoformat(), counts=outcome_counts_to_proto(c)) for day, c in trend.days
            ],
            by_type=[
                jobs_pb2.JobTypeTrend(job_type=name, counts=outcome_counts_to_proto(c)) for name, c in trend.by_type
            ],
            total=outcome_counts_to_proto(trend.total),
        )

    async def GetJobFacets(
        self, request: jobs_pb2.GetJobFacetsRequest, context: ServicerContext
    ) -> jobs_pb2.GetJobFacetsResponse:
        facets = await self._trends.facets(list(request.tenant_ids))
        return jobs_pb2.GetJobFacetsResponse(job_types=facets.job_types, tenant_ids=facets.tenant_ids)

    async def ClaimJobs(
        self, request: jobs_pb2.ClaimJobsRequest, context: ServicerContext
    ) -> jobs_pb2.ClaimJobsResponse:
        jobs = await self._reporting.claim(request.worker_id, list(request.job_types), request.max_jobs or 1)
        return jobs_pb2.ClaimJobsResponse(jobs=[job_to_proto(j) for j in jobs])

    async def ReportBatch(
        self, request: jobs_pb2.ReportBatchRequest, context: ServicerContext
    ) -> jobs_pb2.ReportBatchResponse:
        received = time.time_ns()
        reports: list[JobReportIn] = []
        refused: list[ReportResult] = []
        for report in request.reports:
            try:
                progress, logs, steps = report_from_proto(report)
                start = report.start.total_items if report.HasField("start") else None
                reports.append(JobReportIn(report.job_id, progress, logs, steps, _outcome(report), start))
            except DomainError as error:
                refused.append(ReportResult(report.job_id, False, error.message))
        hops = [
            ("sdk_enqueued", request.planned_at_unix_nanos),
            ("sdk_sent", request.sent_at_unix_nanos),
            ("jobs_received", received),
        ]
        results, cancel = await self._reporting.report(
            request.worker_id, reports, list(request.heartbeat_job_ids), [h for h in hops if h[1]]
        )
        response = jobs_pb2.ReportBatchResponse(cancel_requested_job_ids=cancel)
        for result in [*results, *refused]:
            answer = response.results.add(
                job_id=result.job_id,
                accepted=result.accepted,
                error=result.error,
                status=STATUS_TO_PROTO[result.status] if result.status else jobs_pb2.JOB_STATUS_UNSPECIFIED,
            )
            if result.started is not None:
                answer.job.CopyFrom(job_to_proto(result.started))
        return response
