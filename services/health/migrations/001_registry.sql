-- The registry of connected services (REQ-001 ConnectedService). One row per service, never deleted:
-- removal sets removed_at, so the probe results, rollups and alerts that arrive in later migrations
-- keep a row to reference, and re-registering a removed slug revives the same id and its history.
CREATE TABLE health.services (
    id                      uuid PRIMARY KEY,
    -- The CLI's handle ("erp"); validated by the service, checked here as a last line of defence.
    slug                    text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name                    text NOT NULL,
    type                    text NOT NULL
        CHECK (type IN ('ERP', 'PIM', 'CRM', 'DATABASE', 'MESSAGE_QUEUE', 'CACHE', 'OTHER')),
    -- As configured: may hold ${NAME} placeholders (expanded by probe agents) or credentials.
    -- Only ListProbeTargets returns it raw; every other read goes through sanitize_url.
    endpoint                text NOT NULL,
    probe_kind              text NOT NULL
        CHECK (probe_kind IN ('http', 'tcp', 'postgres', 'redis', 'grpc', 'elasticsearch')),
    description             text NOT NULL DEFAULT '',
    labels                  jsonb NOT NULL DEFAULT '{}',
    check_interval_seconds  integer NOT NULL DEFAULT 30 CHECK (check_interval_seconds >= 5),
    -- Resource alert limits (domain.Thresholds) and probe options (domain.ProbeOptions), as objects so
    -- new options need no migration.
    thresholds              jsonb NOT NULL DEFAULT '{}',
    probe_options           jsonb NOT NULL DEFAULT '{}',
    enabled                 boolean NOT NULL DEFAULT true,
    -- Who owns the definition: the declarative file (changed only there) or the API.
    source                  text NOT NULL CHECK (source IN ('file', 'api')),
    -- The aggregated view, maintained by the health aggregation from probe results.
    status                  text NOT NULL DEFAULT 'UNKNOWN'
        CHECK (status IN ('ONLINE', 'DEGRADED', 'OFFLINE', 'UNKNOWN')),
    status_reason           text NOT NULL DEFAULT '',
    last_checked            timestamptz,
    last_successful         timestamptz,
    -- NULL until the rollups have data (24 h latency, 7 d uptime).
    average_latency_ms      double precision CHECK (average_latency_ms >= 0),
    uptime_percent          double precision CHECK (uptime_percent BETWEEN 0 AND 100),
    created_at              timestamptz NOT NULL DEFAULT now(),
    -- Moves only when the definition, owner or lifecycle changes (a no-op file sync leaves it).
    updated_at              timestamptz NOT NULL DEFAULT now(),
    removed_at              timestamptz
);

-- Reads list live services by name; the registry is small, this keeps them off the removed rows.
CREATE INDEX services_live_name_idx ON health.services (lower(name), slug) WHERE removed_at IS NULL;
