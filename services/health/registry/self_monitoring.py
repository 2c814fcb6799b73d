"""B2X watches itself: its PostgreSQL, Redis, jobs and probes services as connected services.

With B2X_HEALTH_SELF_MONITORING on (`b2c up` turns it on), the health service keeps these
definitions in the registry under the source SELF, next to the file's and the API's. They come from
its own settings, so a fresh stack shows real, checked services instead of an empty UNKNOWN overview.

The database and Redis endpoints are the placeholders `${B2X_DATABASE_URL}` and `${B2X_REDIS_URL}`:
the probe agent expands them from its own environment (the same servers, its own database role), so
no password is written to the registry. The gRPC services are checked through grpc.health.v1 at the
addresses the other services use (B2X_JOBS_ADDR, B2X_PROBES_ADDR). With mutual TLS between the
services a probe has no client certificate to present, so the gRPC services are left out then.
"""

from __future__ import annotations

from services.health.domain import ProbeKind, ProbeOptions, ServiceDefinition, ServiceType
from services.health.settings import HealthSettings

SELF_LABELS = {"b2x": "self"}
SELF_INTERVAL_SECONDS = 15


def _definition(slug: str, name: str, kind: ServiceType, endpoint: str, probe: ProbeKind, what: str,
                options: ProbeOptions) -> ServiceDefinition:  # fmt: skip
    return ServiceDefinition(
        slug=slug,
        name=name,
        type=kind,
        endpoint=endpoint,
        probe_kind=probe,
        description=f"B2X's own {what} (self-monitoring; B2X_HEALTH_SELF_MONITORING=false removes it)",
        labels=SELF_LABELS,
        check_interval_seconds=SELF_INTERVAL_SECONDS,
        probe=options,
    )


def self_definitions(settings: HealthSettings) -> tuple[ServiceDefinition, ...]:
    """What B2X checks of itself, or nothing when self-monitoring is off."""
    if not settings.health_self_monitoring:
        return ()
    options = ProbeOptions(timeout_seconds=5.0, max_retries=1)
    found = [
        _definition("b2x-postgres", "B2X PostgreSQL", ServiceType.DATABASE, "${B2X_DATABASE_URL}",
                    ProbeKind.POSTGRES, "PostgreSQL (connect and SELECT 1)", options),
        _definition("b2x-redis", "B2X Redis", ServiceType.MESSAGE_QUEUE, "${B2X_REDIS_URL}", ProbeKind.REDIS,
                    "Redis (events, check states, slots)", options),
    ]  # fmt: skip
    tls = settings.grpc_tls()
    if not tls.client_auth:
        scheme = "grpcs" if tls.serves_tls else "grpc"
        grpc_options = ProbeOptions(timeout_seconds=5.0, max_retries=1, ca_file=tls.ca_file if tls.serves_tls else "")
        for slug, name, address in (
            ("b2x-jobs", "B2X jobs service", settings.jobs_addr),
            ("b2x-probes", "B2X probes service", settings.probes_addr),
        ):
            found.append(
                _definition(slug, name, ServiceType.OTHER, f"{scheme}://{address}", ProbeKind.GRPC,
                            f"{name.removeprefix('B2X ')} (gRPC health)", grpc_options)
            )  # fmt: skip
    return tuple(found)
