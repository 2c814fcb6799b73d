"""Use cases of the trends: the last N days, and the facets filters offer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from services.common.errors import InvalidArgumentError
from services.jobs.domain import validate_tenant
from services.jobs.trends.domain import DEFAULT_DAYS, MAX_DAYS, JobFacets, JobTrend, TrendRepository, build_trend


class JobTrends:
    """Use cases: the trend of the last N days and the facets filters offer."""

    def __init__(self, repository: TrendRepository, today: date | None = None) -> None:
        self._repo = repository
        self._today = today

    def _day(self) -> date:
        return self._today or datetime.now(UTC).date()

    async def trend(self, days: int, tenant_ids: Sequence[str]) -> JobTrend:
        days = days or DEFAULT_DAYS
        if not 1 <= days <= MAX_DAYS:
            raise InvalidArgumentError(f"days must be between 1 and {MAX_DAYS} (got {days})")
        tenants = [validate_tenant(t) for t in tenant_ids]
        first_day = self._day() - timedelta(days=days - 1)
        return build_trend(await self._repo.rollups(first_day, tenants), first_day, days)

    async def facets(self, tenant_ids: Sequence[str]) -> JobFacets:
        tenants = [validate_tenant(t) for t in tenant_ids]
        return await self._repo.facets(self._day() - timedelta(days=MAX_DAYS), tenants)
