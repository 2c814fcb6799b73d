"""The aggregation fed by a real probe agent: periodic checks over HTTP, the stream, health's status and events."""

from __future__ import annotations

from pathlib import Path

import pytest
from b2x.monitoring.v1 import common_pb2, health_pb2, health_pb2_grpc

from services.common.events import Resync, Topic
from tests.health.aggregation_helpers import eventually
from tests.health.helpers import TIMEOUT
from tests.stacks import SECRET, services_stack
from tests.support import ServiceHarness

# crm is checked every 5 s and is OFFLINE at its third failure: ~15 s after the agent starts, plus slack.
DEADLINE = 60.0


async def test_a_running_agent_makes_erp_online_and_crm_offline_after_three_failures(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the probes agent checking the stack's endpoints, erp becomes ONLINE with resources, crm DEGRADED then
    OFFLINE at its third failed check, each change announced once, and the summary says the system is OFFLINE."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    resources = await harness.resources("health")
    events = await resources.bus.subscribe(Topic.HEALTH_STATUS)
    async with services_stack(harness, tmp_path, agent=True) as stack:
        stub = health_pb2_grpc.HealthServiceStub(harness.channel(stack.health_addr))

        async def services() -> dict[str, health_pb2.ConnectedService]:
            listed = await stub.ListServices(health_pb2.ListServicesRequest(), timeout=TIMEOUT)
            return {s.slug: s for s in listed.services}

        found = await eventually(
            services,
            lambda s: (
                s["erp"].status == common_pb2.SERVICE_STATUS_ONLINE
                and s["crm"].status == common_pb2.SERVICE_STATUS_OFFLINE
                and s["erp"].resources.connection_pool_total == 10
            ),
            DEADLINE,
        )
        erp, crm = found["erp"], found["crm"]
        assert erp.uptime_percent == 100 and erp.average_latency_ms > 0
        assert erp.resources.queue_depth == 23
        assert crm.status_reason.startswith("3 consecutive checks failed: SERVICE_UNAVAILABLE (HTTP 503")
        assert crm.uptime_percent == 0 and crm.HasField("last_checked") and not crm.HasField("last_successful")
        assert SECRET not in crm.status_reason

        summary = await stub.GetHealthSummary(health_pb2.GetHealthSummaryRequest(), timeout=TIMEOUT)
        assert summary.overall_status == common_pb2.SERVICE_STATUS_OFFLINE
        assert summary.overall_reason == "1 of 2 services offline: CRM Integration"

        # Each change once, chained: UNKNOWN -> DEGRADED -> OFFLINE (one hop fewer if a batch held two failures).
        crm_changes: list[tuple[int, int]] = []
        while not crm_changes or crm_changes[-1][1] != common_pb2.SERVICE_STATUS_OFFLINE:
            item = await events.get(DEADLINE)
            if not isinstance(item, Resync) and item.WhichOneof("payload") == "health_status_changed":
                change = item.health_status_changed
                if change.service_slug == "crm":
                    crm_changes.append((change.previous_status, change.status))
        statuses = [crm_changes[0][0]] + [after for _, after in crm_changes]
        assert all(before == statuses[i] for i, (before, _) in enumerate(crm_changes))
        assert statuses[0] == common_pb2.SERVICE_STATUS_UNKNOWN
        assert statuses[1:] in (
            [common_pb2.SERVICE_STATUS_DEGRADED, common_pb2.SERVICE_STATUS_OFFLINE],
            [common_pb2.SERVICE_STATUS_OFFLINE],
        )
    await events.close()
