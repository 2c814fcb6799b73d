-- The aggregated view fed by the probes' check states (Redis Stream, consumer group "health") and
-- resource samples (ResourceMetricsUpdated events). See services/health/aggregation.py.

-- What the status is made of, so either input can recompute it without the other:
-- the verdict of the latest check alone, and the resource pressure alone ('' when none).
ALTER TABLE health.services
    ADD COLUMN check_status text NOT NULL DEFAULT 'UNKNOWN'
        CHECK (check_status IN ('ONLINE', 'DEGRADED', 'OFFLINE', 'UNKNOWN')),
    ADD COLUMN check_reason text NOT NULL DEFAULT '',
    ADD COLUMN pressure text NOT NULL DEFAULT '',
    -- Set while the probes' circuit breaker for the service is open: when we first saw it open.
    ADD COLUMN breaker_open_since timestamptz,
    ADD COLUMN status_changed_at timestamptz;

-- Checks per service and hour: the only source of uptime, average latency and history views.
-- Upserted once per consumed batch; a row is at most a few dozen bytes, one per service and hour,
-- so retention is a cheap delete of the hours past it (maintenance.py), not partitions.
CREATE TABLE health.check_rollups_hourly (
    service_id      uuid NOT NULL REFERENCES health.services (id),
    bucket_start    timestamptz NOT NULL,
    checks          integer NOT NULL CHECK (checks >= 0),
    failures        integer NOT NULL CHECK (failures BETWEEN 0 AND checks),
    -- Of successful checks only: a failure's duration is a timeout, not a latency.
    latency_sum_ms  double precision NOT NULL DEFAULT 0,
    latency_count   integer NOT NULL DEFAULT 0,
    latency_max_ms  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, bucket_start)
);
-- Retention deletes by hour; the all-services history reads by hour.
CREATE INDEX check_rollups_hourly_bucket_idx ON health.check_rollups_hourly (bucket_start);

-- One row per check state counted into the rollups, so a state delivered twice (a crash between
-- COMMIT and XACK, a claimed entry) is counted once. Kept a day; ordered by time for that delete.
CREATE TABLE health.check_receipts (
    checked_at  timestamptz NOT NULL,
    service_id  uuid NOT NULL,
    PRIMARY KEY (checked_at, service_id)
);

-- The latest resource sample of each service (REQ-001 ConnectedService.resources), upserted in batches.
CREATE TABLE health.resource_latest (
    service_id                  uuid PRIMARY KEY REFERENCES health.services (id),
    sampled_at                  timestamptz NOT NULL,
    cpu_percent                 double precision NOT NULL,
    cpu_average                 double precision NOT NULL,
    cpu_peak                    double precision NOT NULL,
    memory_used_bytes           bigint NOT NULL,
    memory_total_bytes          bigint NOT NULL,
    memory_percent              double precision NOT NULL,
    memory_peak_bytes           bigint NOT NULL,
    connection_pool_active      integer NOT NULL,
    connection_pool_total       integer NOT NULL,
    thread_count                integer NOT NULL,
    queue_depth                 integer NOT NULL,
    processing_rate_per_minute  double precision NOT NULL
);
