"""`GET /api/jobs.csv`: the job list the dashboard shows, every matching row, as CSV.

The same filter and sort as the `jobs` query, from URL parameters (status, type, tenant: comma lists;
from/to: ISO times of creation; q: error text; sort, dir). The key comes in the Authorization header
like for /graphql; a tenant key exports its tenant only. Pages of 500 are read from the jobs service
and streamed, so a large export never sits in memory; it stops at MAX_ROWS.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from b2x.monitoring.v1 import common_pb2, jobs_pb2
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.auth import parse_bearer
from gateway.context import AppState
from gateway.jobs import types as t
from gateway.jobs.convert import DIRECTION_TO_PROTO, SORT_TO_PROTO, filter_to_proto
from gateway.view import error_response
from services.common.protoconv import from_timestamp

MAX_ROWS = 100_000
PAGE = 500
COLUMNS = (
    "id", "job_type", "tenant_id", "status", "percent", "processed_items", "total_items", "succeeded_items",
    "failed_items", "created_at", "started_at", "completed_at", "duration_seconds", "eta_seconds", "attempt",
    "error_category", "error_class", "error_message",
)  # fmt: skip
# A cell starting with one of these is read as a formula by spreadsheets; error texts come from outside.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class BadExportRequest(ValueError):
    pass


def _list(request: Request, name: str) -> list[str]:
    return [v.strip() for v in request.query_params.get(name, "").split(",") if v.strip()]


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadExportRequest(f"{name} must be an ISO time such as 2026-01-02T14:00:00Z (got {raw[:40]!r})") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _enum(enum: type[t.JobStatus] | type[t.JobSortField] | type[t.SortDirection], raw: str, name: str) -> object:
    try:
        return enum[raw.upper()]
    except KeyError:
        choices = ", ".join(m.name for m in enum)
        raise BadExportRequest(f"unknown {name} {raw[:40]!r}; use one of {choices}") from None


def parse_request(request: Request) -> tuple[t.JobFilter, t.JobSortField, t.SortDirection]:
    statuses = [_enum(t.JobStatus, s, "status") for s in _list(request, "status")]
    flt = t.JobFilter(
        status=statuses or None,  # type: ignore[arg-type]
        job_type=_list(request, "type") or None,
        tenant_id=_list(request, "tenant") or None,
        created_after=_time(request, "from"),
        created_before=_time(request, "to"),
        search=request.query_params.get("q") or None,
    )
    sort = _enum(t.JobSortField, request.query_params.get("sort", "CREATED_AT"), "sort")
    direction = _enum(t.SortDirection, request.query_params.get("dir", "DESC"), "dir")
    return flt, sort, direction  # type: ignore[return-value]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _row(job: jobs_pb2.SchedulerJob) -> list[str]:
    def at(stamp: datetime | None) -> str:
        return stamp.isoformat() if stamp else ""

    p = job.progress
    error_class = jobs_pb2.ErrorClass.Name(job.error_class).removeprefix("ERROR_CLASS_") if job.error_class else ""
    values: list[object] = [
        job.id, job.job_type, job.tenant_id, jobs_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_"),
        round(p.percent, 1), p.processed_items, p.total_items, p.succeeded_items, p.failed_items,
        at(from_timestamp(job.created_at)), at(from_timestamp(job.started_at)), at(from_timestamp(job.completed_at)),
        round(job.duration_ms / 1000, 3) if job.HasField("started_at") else "",
        round(p.eta_seconds, 1) if p.HasField("eta_seconds") else "", job.attempt, job.error_category,
        error_class, job.error_message,
    ]  # fmt: skip
    return [_cell(v) for v in values]


def _encode(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


async def export_jobs_csv(request: Request) -> Response:
    state: AppState = request.state.app_state
    principal = await state.keys.verify(parse_bearer(request.headers.get("authorization")))
    if principal is None:
        return error_response(401, "a valid API key is required", "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"})
    try:
        flt, sort, direction = parse_request(request)
    except BadExportRequest as error:
        return error_response(400, str(error), "BAD_USER_INPUT")
    wire = filter_to_proto(flt, principal.tenant_id)
    filename = f"jobs-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    if wire is None:
        return Response(
            _encode([list(COLUMNS)]), media_type="text/csv; charset=utf-8", headers={**headers, "X-Row-Count": "0"}
        )
    clients = state.clients
    page_request = jobs_pb2.ListJobsRequest(
        filter=wire,
        sort_by=SORT_TO_PROTO[sort],
        direction=DIRECTION_TO_PROTO[direction],
        page=common_pb2.PageRequest(page_size=PAGE),
    )
    try:
        first = await clients.call(clients.jobs, clients.jobs.stub.ListJobs, page_request)
    except GraphQLError as error:
        code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
        status = {"BAD_USER_INPUT": 400, "SERVICE_UNAVAILABLE": 503}.get(str(code), 502)
        return error_response(status, error.message, str(code))
    total = min(int(first.page_info.total_count), MAX_ROWS)

    async def body() -> AsyncIterator[bytes]:
        page, sent = first, 0
        yield _encode([list(COLUMNS)])
        while True:
            rows = [_row(job) for job in page.jobs[: MAX_ROWS - sent]]
            sent += len(rows)
            yield _encode(rows)
            if not page.page_info.has_next_page or sent >= MAX_ROWS:
                return
            page_request.page.page_token = page.page_info.next_page_token
            page = await clients.call(clients.jobs, clients.jobs.stub.ListJobs, page_request)

    return StreamingResponse(
        body(), media_type="text/csv; charset=utf-8", headers={**headers, "X-Row-Count": str(total)}
    )
