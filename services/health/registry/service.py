"""Use cases of the registry. No transport here: callers pass domain values and get domain objects.

Who owns a definition decides who may change it: services from the declarative file change only
through the file (the next start-up's sync), services registered over the API only over the API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol

from services.common.errors import FailedPreconditionError
from services.common.logging import get_logger
from services.health.domain import (
    ConnectedService,
    ServiceDefinition,
    ServiceStatus,
    ServiceType,
    Source,
    StatusAnnouncer,
    StatusChange,
    SyncReport,
)
from services.health.registry.rules import parse_ref
from services.health.status import DISABLED

log = get_logger(__name__)

FILE_MANAGED_HINT = "edit B2X_CONFIG_FILE and restart the health service instead"
SELF_MANAGED_HINT = "set B2X_HEALTH_SELF_MONITORING=false and restart the health service to stop checking it"
# The status of a service describes the endpoint that was probed; a new endpoint starts unknown.
ENDPOINT_CHANGED = "endpoint or probe changed; waiting for the first check"
ENABLED = "enabled; waiting for the first check"


class RegistryWriter(Protocol):
    async def find(self, slug: str) -> ConnectedService | None: ...
    async def find_live(self, service_id: str | None, slug: str | None) -> ConnectedService: ...
    async def all(self) -> list[ConnectedService]: ...
    async def insert(self, definition: ServiceDefinition, source: Source, now: datetime) -> ConnectedService: ...
    async def replace(
        self,
        service_id: str,
        definition: ServiceDefinition,
        source: Source,
        now: datetime,
        *,
        reset_status: str | None = None,
    ) -> ConnectedService: ...
    async def remove(self, service_id: str, now: datetime) -> ConnectedService: ...


class RegistryRepository(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RegistryWriter]: ...
    async def get(self, service_id: str | None, slug: str | None) -> ConnectedService: ...
    async def list_live(
        self,
        statuses: Sequence[ServiceStatus] = (),
        types: Sequence[ServiceType] = (),
        *,
        enabled_only: bool = False,
    ) -> list[ConnectedService]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _reset_reason(before: ConnectedService, after: ServiceDefinition) -> str | None:
    if before.removed:
        return "registered again; waiting for the first check"
    old = before.definition
    if old.enabled != after.enabled:
        return ENABLED if after.enabled else DISABLED
    if (old.endpoint, old.probe_kind) != (after.endpoint, after.probe_kind):
        return ENDPOINT_CHANGED
    return None


class RegistryService:
    """Register, read and remove connected services; bring the registry in line with the config file."""

    def __init__(
        self,
        repository: RegistryRepository,
        clock: Callable[[], datetime] = utcnow,
        announcer: StatusAnnouncer | None = None,
    ) -> None:
        self._repo = repository
        self._clock = clock
        self._announcer = announcer

    async def _announce_resets(self, pairs: Sequence[tuple[ConnectedService, ConnectedService]]) -> None:
        """HealthStatusChanged for services a definition change sent back to UNKNOWN."""
        changes = [
            StatusChange(after.id, after.slug, after.definition.name, after.status, before.status, after.status_reason,
                         after.updated_at)
            for before, after in pairs
            if not before.removed and before.status is not after.status
        ]  # fmt: skip
        if changes and self._announcer is not None:
            await self._announcer.status_changed(changes)

    async def register(self, definition: ServiceDefinition) -> tuple[ConnectedService, bool]:
        """Create or update an API-owned service by slug; returns (service, created).

        Re-registering a removed slug revives its row, so its history stays attached. A slug owned
        by the config file is refused: the file would overwrite the change at the next start.
        """
        now = self._clock()
        async with self._repo.transaction() as tx:
            existing = await tx.find(definition.slug)
            if existing is None:
                created = await tx.insert(definition, Source.API, now)
                log.info("service registered", slug=definition.slug, service_id=created.id)
                return created, True
            if not existing.removed and existing.source is Source.FILE:
                raise FailedPreconditionError(
                    f"service {definition.slug!r} is managed by the config file; {FILE_MANAGED_HINT}"
                )
            if not existing.removed and existing.source is Source.SELF:
                raise FailedPreconditionError(f"service {definition.slug!r} is B2X itself; {SELF_MANAGED_HINT}")
            if not existing.removed and existing.definition == definition:
                return existing, False
            stored = await tx.replace(
                existing.id, definition, Source.API, now, reset_status=_reset_reason(existing, definition)
            )
        log.info("service registered" if existing.removed else "service updated", slug=definition.slug)
        await self._announce_resets([(existing, stored)])
        return stored, existing.removed

    async def get(self, ref: str) -> ConnectedService:
        """A live service by id or slug."""
        service_id, slug = parse_ref(ref)
        return await self._repo.get(service_id, slug)

    async def list_services(
        self, statuses: Sequence[ServiceStatus] = (), types: Sequence[ServiceType] = ()
    ) -> list[ConnectedService]:
        """Live services, filtered by status and type (empty: all), ordered by name."""
        return await self._repo.list_live(statuses, types)

    async def remove(self, ref: str) -> ConnectedService:
        """Soft-remove an API-owned service; file-owned ones are removed by deleting them from the file."""
        service_id, slug = parse_ref(ref)
        async with self._repo.transaction() as tx:
            existing = await tx.find_live(service_id, slug)
            if existing.source is Source.FILE:
                raise FailedPreconditionError(
                    f"service {existing.slug!r} is managed by the config file; "
                    "delete it from B2X_CONFIG_FILE and restart the health service instead"
                )
            if existing.source is Source.SELF:
                raise FailedPreconditionError(f"service {existing.slug!r} is B2X itself; {SELF_MANAGED_HINT}")
            removed = await tx.remove(existing.id, self._clock())
        log.info("service removed", slug=removed.slug, service_id=removed.id)
        return removed

    async def probe_targets(self, refs: Sequence[str] = ()) -> list[ConnectedService]:
        """What probe agents check: every enabled service, or exactly the named ones (even disabled)."""
        if not refs:
            return await self._repo.list_live(enabled_only=True)
        found: dict[str, ConnectedService] = {}
        for ref in refs:
            service = await self.get(ref)
            found.setdefault(service.id, service)
        return list(found.values())

    async def sync_file(self, definitions: Sequence[ServiceDefinition]) -> SyncReport:
        """Make the file-owned services equal to `definitions`; idempotent.

        New slugs are created, changed ones updated, file-owned services missing from the file
        soft-removed. A slug registered over the API (or kept by self-monitoring) that appears in the
        file is taken over by the file (the operator wrote it there on purpose). Others are untouched.
        """
        return await self._sync(Source.FILE, definitions, take_over=True)

    async def sync_self(self, definitions: Sequence[ServiceDefinition]) -> SyncReport:
        """Make the self-monitoring services equal to `definitions` (empty: remove them); idempotent.

        A slug the file or the API owns is left to its owner: the operator's definition wins.
        """
        return await self._sync(Source.SELF, definitions, take_over=False)

    async def _sync(self, source: Source, definitions: Sequence[ServiceDefinition], *, take_over: bool) -> SyncReport:
        now = self._clock()
        created: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        unchanged: list[str] = []
        replaced: list[tuple[ConnectedService, ConnectedService]] = []
        async with self._repo.transaction() as tx:
            stored = {s.slug: s for s in await tx.all()}
            for definition in definitions:
                existing = stored.get(definition.slug)
                if existing is None:
                    await tx.insert(definition, source, now)
                    created.append(definition.slug)
                    continue
                if existing.source is source and not existing.removed and existing.definition == definition:
                    unchanged.append(definition.slug)
                    continue
                if existing.source is not source and not existing.removed:
                    if not take_over:
                        unchanged.append(definition.slug)
                        continue
                    log.warning(f"{source.value} definition takes over a service owned by {existing.source.value}",
                                slug=definition.slug)  # fmt: skip
                stored_now = await tx.replace(
                    existing.id, definition, source, now, reset_status=_reset_reason(existing, definition)
                )
                replaced.append((existing, stored_now))
                (created if existing.removed else updated).append(definition.slug)
            wanted = {d.slug for d in definitions}
            for service in stored.values():
                if service.source is source and not service.removed and service.slug not in wanted:
                    await tx.remove(service.id, now)
                    removed.append(service.slug)
        await self._announce_resets(replaced)
        report = SyncReport(tuple(created), tuple(updated), tuple(removed), tuple(unchanged))
        log.info(
            "config file synced" if source is Source.FILE else "self-monitoring services synced",
            created=list(report.created),
            updated=list(report.updated),
            removed=list(report.removed),
            unchanged=len(report.unchanged),
        )
        return report
