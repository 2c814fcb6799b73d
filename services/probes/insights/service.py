"""Use cases over what the agents stored: check states, patterns, exports, histories, resources, agents.

No transport here. Services are named by id or slug; one the probes have data about is resolved
locally, any other through the registry (so an unknown name is NOT_FOUND, not an empty chart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.errors import InvalidArgumentError, NotFoundError
from services.probes.agent.leases import AgentRecord, Coordination
from services.probes.agent.records import CheckState
from services.probes.agent.resources.model import ResourceAlert, ServiceResources
from services.probes.domain import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ConnectionTestResult, ErrorFilter, Page
from services.probes.insights.export import (
    connection_test_to_json,
    connection_test_to_text,
    errors_to_json,
    errors_to_text,
)
from services.probes.insights.history import (
    SOURCE,
    Bucket,
    LatencyPoint,
    ResourcePoint,
    choose_bucket,
    latency_points,
    merge_latency,
    resource_points,
)
from services.probes.insights.patterns import PatternReport, analyse
from services.probes.insights.report_pdf import connection_test_pdf
from services.probes.insights.repository import InsightsRepository, missing_ids
from services.probes.service import TargetSource

MAX_EXPORT = 500
MAX_FINGERPRINTS = 200
DEFAULT_FINGERPRINTS = 20


class ExportFormat(StrEnum):
    JSON = "JSON"
    TEXT = "TEXT"
    PDF = "PDF"


@dataclass(frozen=True)
class Export:
    content: bytes
    filename: str
    content_type: str
    count: int = 1
    truncated: bool = False


class StoredTests(Protocol):
    async def get_test(self, test_id: str) -> ConnectionTestResult: ...


def _range(
    start: datetime | None, end: datetime | None, default: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    end = end or now
    start = start or end - default
    if start >= end:
        raise InvalidArgumentError("the time range is empty: start must be before end")
    return start, end


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%d-%H%M%S")


class InsightsService:
    def __init__(
        self,
        repository: InsightsRepository,
        tests: StoredTests,
        targets: TargetSource,
        coordination: Coordination,
    ) -> None:
        self._repo = repository
        self._tests = tests
        self._targets = targets
        self._coord = coordination

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    async def _resolve(self, service: str) -> tuple[str, str]:
        service = service.strip()
        if not service:
            raise InvalidArgumentError("service is required: a connected service's id or slug")
        found = await self._repo.resolve(service)
        if found is not None:
            return found
        target = await self._targets.get(service)
        return target.service_id, target.slug

    async def check_states(self, services: Sequence[str]) -> list[CheckState]:
        return await self._repo.check_states([s.strip() for s in services if s.strip()])

    async def error_patterns(
        self, service: str, start: datetime | None, end: datetime | None, timezone: str, max_fingerprints: int
    ) -> PatternReport:
        start, end = _range(start, end, timedelta(days=7), self._now())
        try:
            tz = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgumentError(f"timezone {timezone[:60]!r} is not an IANA time zone name") from None
        if not 0 <= max_fingerprints <= MAX_FINGERPRINTS:
            raise InvalidArgumentError(f"max_fingerprints must be between 1 and {MAX_FINGERPRINTS}")
        service_id = (await self._resolve(service))[0] if service.strip() else ""
        rows = await self._repo.hourly_error_counts(service_id, start - (end - start), end)
        return analyse(rows, start, end, tz, max_fingerprints or DEFAULT_FINGERPRINTS)

    async def export_errors(self, ids: Sequence[str], flt: ErrorFilter, fmt: ExportFormat, limit: int) -> Export:
        if fmt is ExportFormat.PDF:
            raise InvalidArgumentError("communication errors export as JSON or TEXT")
        if not 0 <= limit <= MAX_EXPORT:
            raise InvalidArgumentError(f"limit must be between 1 and {MAX_EXPORT}")
        if len(ids) > MAX_EXPORT:
            raise InvalidArgumentError(f"at most {MAX_EXPORT} error ids can be exported at once")
        errors, truncated = await self._repo.errors_for_export(ids, flt, limit or MAX_EXPORT)
        if ids and (missing := missing_ids(ids, errors)):
            raise NotFoundError(
                f"no communication error {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        selection: dict[str, Any] = {"ids": list(ids)} if ids else {
            "service": flt.service, "types": [t.value for t in flt.types], "groups": [g.value for g in flt.groups],
            "severities": [s.value for s in flt.severities],
            "since": flt.since.isoformat() if flt.since else None,
            "until": flt.until.isoformat() if flt.until else None,
        }  # fmt: skip
        stamp = _stamp(self._now())
        if fmt is ExportFormat.TEXT:
            text = errors_to_text(errors)
            return Export(
                text.encode(), f"report-to-provider-{stamp}.txt", "text/plain; charset=utf-8", len(errors), truncated
            )
        content = errors_to_json(errors, selection, truncated)
        return Export(
            content.encode(), f"communication-errors-{stamp}.json", "application/json", len(errors), truncated
        )

    async def export_test(self, test_id: str, fmt: ExportFormat) -> Export:
        result = await self._tests.get_test(test_id)
        try:
            name = (await self._targets.get(result.service_id)).name or result.service_slug
        except Exception:
            name = result.service_slug  # the registry is down or the service was removed: the slug will do
        base = f"connection-test-{result.service_slug}-{result.executed_at.astimezone(UTC):%Y%m%d-%H%M%S}"
        if fmt is ExportFormat.PDF:
            return Export(connection_test_pdf(result, name), base + ".pdf", "application/pdf")
        if fmt is ExportFormat.TEXT:
            return Export(connection_test_to_text(result, name).encode(), base + ".txt", "text/plain; charset=utf-8")
        return Export(connection_test_to_json(result, name).encode(), base + ".json", "application/json")

    async def latency_history(
        self, service: str, start: datetime | None, end: datetime | None, bucket: Bucket | None
    ) -> tuple[str, Bucket, list[LatencyPoint], LatencyPoint]:
        start, end = _range(start, end, timedelta(hours=24), self._now())
        chosen = choose_bucket(start, end, bucket)
        service_id, _ = await self._resolve(service)
        rows = await self._repo.latency_rows(service_id, SOURCE[chosen], start, end)
        return service_id, chosen, latency_points(rows, chosen), merge_latency(start, rows)

    async def resource_history(
        self, service: str, start: datetime | None, end: datetime | None, bucket: Bucket | None
    ) -> tuple[str, Bucket, list[ResourcePoint]]:
        start, end = _range(start, end, timedelta(hours=1), self._now())
        chosen = choose_bucket(start, end, bucket)
        service_id, _ = await self._resolve(service)
        rows = await self._repo.resource_rows(service_id, SOURCE[chosen], start, end)
        return service_id, chosen, resource_points(rows, chosen)

    async def resources(self, service: str) -> ServiceResources:
        service_id, slug = await self._resolve(service)
        found = await self._repo.resources([service_id], self._now())
        if not found:
            raise NotFoundError(
                f"no resource figures for {slug}: set resources.metrics_url or resources.process_name in its definition"
            )
        return found[0]

    async def list_resources(self, services: Sequence[str]) -> list[ServiceResources]:
        return await self._repo.resources([s.strip() for s in services if s.strip()], self._now())

    async def alerts(
        self,
        service: str,
        active_only: bool,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        cursor: str | None,
    ) -> Page[ResourceAlert]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgumentError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})")
        if since and until and since >= until:
            raise InvalidArgumentError("the time range is empty: start must be before end")
        return await self._repo.alerts(
            service.strip(), active_only, since, until, page_size or DEFAULT_PAGE_SIZE, cursor
        )

    async def agents(self) -> list[AgentRecord]:
        return await self._coord.agents()
