-- Periodic checks, their rollups, error counts for pattern analysis, resource samples and alerts.
--
-- Time series are partitioned by range of time (day or month) so retention drops whole partitions.
-- `ensure_partition` creates the partition holding a timestamp; the writers call it for each period
-- they have not seen yet, and the maintenance loop creates today's and tomorrow's ahead and drops
-- those past retention with `drop_partitions_before`.

CREATE FUNCTION probes.ensure_partition(parent text, at timestamptz, step text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    period_start timestamptz;
    name text;
BEGIN
    IF step NOT IN ('day', 'month') THEN
        RAISE EXCEPTION 'partition step must be day or month, not %', step;
    END IF;
    period_start := date_trunc(step, at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name := parent || '_' || to_char(period_start AT TIME ZONE 'UTC', CASE step WHEN 'day' THEN 'YYYY_MM_DD' ELSE 'YYYY_MM' END);
    PERFORM pg_advisory_xact_lock(hashtext('probes.' || parent));
    IF to_regclass('probes.' || name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE probes.%I PARTITION OF probes.%I FOR VALUES FROM (%L) TO (%L)',
            name, parent, period_start, period_start + ('1 ' || step)::interval);
    END IF;
    RETURN name;
END;
$$;

-- Drops every partition of `parent` whose upper bound is at or before `cutoff`; returns their names.
CREATE FUNCTION probes.drop_partitions_before(parent text, cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    upper_bound timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('probes.' || parent));
    FOR part IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = ('probes.' || parent)::regclass
    LOOP
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound IS NOT NULL AND upper_bound <= cutoff THEN
            EXECUTE format('DROP TABLE probes.%I', part.relname);
            RETURN NEXT part.relname;
        END IF;
    END LOOP;
END;
$$;

-- On-demand tests bypass the breaker of the periodic checks, and say where it stood.
ALTER TABLE probes.connection_tests ADD COLUMN circuit_breaker text
    CHECK (circuit_breaker IN ('CLOSED', 'OPEN', 'HALF_OPEN'));

-- One row per periodic check (or breaker-skipped check), by the agent holding the target's lease.
-- `slot` is the epoch-aligned interval the check belongs to: one holder per slot, so one row per slot.
CREATE TABLE probes.probe_results (
    service_id              text NOT NULL,
    checked_at              timestamptz NOT NULL,
    slot                    bigint NOT NULL,
    agent_id                text NOT NULL,
    success                 boolean NOT NULL,
    degraded                boolean NOT NULL,
    skipped                 boolean NOT NULL,
    error_type              text,
    total_ms                double precision NOT NULL,
    dns_ms                  double precision,
    tcp_ms                  double precision,
    tls_ms                  double precision,
    ttfb_ms                 double precision,
    download_ms             double precision,
    status_code             integer,
    communication_error_id  uuid
) PARTITION BY RANGE (checked_at);
CREATE INDEX probe_results_service_idx ON probes.probe_results (service_id, checked_at DESC);

-- The latest periodic check of each service and its circuit breaker, upserted in batches.
CREATE TABLE probes.service_latest (
    service_id                text PRIMARY KEY,
    service_slug              text NOT NULL,
    checked_at                timestamptz NOT NULL,
    success                   boolean NOT NULL,
    degraded                  boolean NOT NULL,
    error_type                text,
    error_group               text,
    summary                   text NOT NULL,
    total_latency_ms          double precision NOT NULL,
    speed_rating              text,
    consecutive_failures      integer NOT NULL,
    breaker_state             text NOT NULL CHECK (breaker_state IN ('CLOSED', 'OPEN', 'HALF_OPEN')),
    breaker_retry_at          timestamptz,
    breaker_cooldown_seconds  double precision NOT NULL DEFAULT 0,
    last_success_at           timestamptz,
    last_failure_at           timestamptz,
    agent_id                  text NOT NULL,
    interval_seconds          integer NOT NULL
);
CREATE INDEX service_latest_slug_idx ON probes.service_latest (service_slug);

-- Latency rollups of periodic checks. `histogram` counts successful checks per latency bucket
-- (bounds in services/probes/agent/histogram.py), so rollups merge by adding and p95 is read from it.
CREATE TABLE probes.latency_minute (
    service_id    text NOT NULL,
    bucket_start  timestamptz NOT NULL,
    checks        integer NOT NULL,
    failures      integer NOT NULL,
    skipped       integer NOT NULL,
    ok_ms_sum     double precision NOT NULL,
    ok_ms_max     double precision NOT NULL,
    histogram     integer[] NOT NULL,
    PRIMARY KEY (service_id, bucket_start)
) PARTITION BY RANGE (bucket_start);

CREATE TABLE probes.latency_hour (LIKE probes.latency_minute INCLUDING DEFAULTS, PRIMARY KEY (service_id, bucket_start))
    PARTITION BY RANGE (bucket_start);

-- Communication errors counted per hour and fingerprint (service, type, endpoint with ids replaced),
-- so pattern analysis over weeks reads a few thousand rows instead of every error.
CREATE TABLE probes.error_counts_hourly (
    service_id    text NOT NULL,
    service_slug  text NOT NULL,
    error_type    text NOT NULL,
    error_group   text NOT NULL,
    endpoint_key  text NOT NULL,
    hour_start    timestamptz NOT NULL,
    count         integer NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    PRIMARY KEY (service_id, error_type, endpoint_key, hour_start)
) PARTITION BY RANGE (hour_start);
CREATE INDEX error_counts_hourly_time_idx ON probes.error_counts_hourly (hour_start);
CREATE INDEX error_counts_hourly_slug_idx ON probes.error_counts_hourly (service_slug, hour_start);

-- Resource samples as taken (every 5 s by default), kept a few days.
CREATE TABLE probes.resource_samples (
    service_id          text NOT NULL,
    sampled_at          timestamptz NOT NULL,
    cpu_percent         double precision,
    memory_used_bytes   bigint,
    memory_total_bytes  bigint,
    memory_percent      double precision,
    pool_active         integer,
    pool_total          integer,
    threads             integer,
    queue_depth         integer,
    processing_rate     double precision
) PARTITION BY RANGE (sampled_at);
CREATE INDEX resource_samples_service_idx ON probes.resource_samples (service_id, sampled_at DESC);

CREATE TABLE probes.resource_minute (
    service_id        text NOT NULL,
    bucket_start      timestamptz NOT NULL,
    samples           integer NOT NULL,
    cpu_sum           double precision NOT NULL,
    cpu_max           double precision NOT NULL,
    mem_pct_sum       double precision NOT NULL,
    mem_pct_max       double precision NOT NULL,
    mem_used_sum      double precision NOT NULL,
    mem_used_max      bigint NOT NULL,
    mem_total_max     bigint NOT NULL,
    pool_active_max   integer NOT NULL,
    pool_total_max    integer NOT NULL,
    threads_max       integer NOT NULL,
    queue_sum         double precision NOT NULL,
    queue_max         integer NOT NULL,
    PRIMARY KEY (service_id, bucket_start)
) PARTITION BY RANGE (bucket_start);

CREATE TABLE probes.resource_hour (LIKE probes.resource_minute INCLUDING DEFAULTS, PRIMARY KEY (service_id, bucket_start))
    PARTITION BY RANGE (bucket_start);

-- REQ-001 ResourceMetrics of each sampled service, as of its last sample.
CREATE TABLE probes.resource_latest (
    service_id          text PRIMARY KEY,
    service_slug        text NOT NULL,
    sampled_at          timestamptz NOT NULL,
    cpu_percent         double precision NOT NULL,
    cpu_average         double precision NOT NULL,
    cpu_peak            double precision NOT NULL,
    memory_used_bytes   bigint NOT NULL,
    memory_total_bytes  bigint NOT NULL,
    memory_percent      double precision NOT NULL,
    memory_peak_bytes   bigint NOT NULL,
    pool_active         integer NOT NULL,
    pool_total          integer NOT NULL,
    threads             integer NOT NULL,
    queue_depth         integer NOT NULL,
    processing_rate     double precision NOT NULL,
    source              text NOT NULL,
    sample_error        text NOT NULL DEFAULT '',
    thresholds          jsonb NOT NULL,
    interval_seconds    double precision NOT NULL,
    agent_id            text NOT NULL
);
CREATE INDEX resource_latest_slug_idx ON probes.resource_latest (service_slug);

-- REQ-001 ResourceAlert. One open alert per service and type: a breach that lasts is one alert.
CREATE TABLE probes.resource_alerts (
    id               uuid PRIMARY KEY,
    service_id       text NOT NULL,
    service_slug     text NOT NULL,
    alert_type       text NOT NULL,
    threshold_value  double precision NOT NULL,
    actual_value     double precision NOT NULL,
    triggered_at     timestamptz NOT NULL,
    resolved_at      timestamptz,
    message          text NOT NULL
);
CREATE UNIQUE INDEX resource_alerts_open_idx ON probes.resource_alerts (service_id, alert_type) WHERE resolved_at IS NULL;
CREATE INDEX resource_alerts_service_idx ON probes.resource_alerts (service_id, triggered_at DESC, id DESC);
CREATE INDEX resource_alerts_time_idx ON probes.resource_alerts (triggered_at DESC, id DESC);

-- Today's and tomorrow's partitions exist from the start; the maintenance loop keeps it so.
SELECT probes.ensure_partition(t.name, now() + d.ahead, t.step)
FROM (VALUES ('probe_results', 'day'), ('latency_minute', 'day'), ('latency_hour', 'month'),
             ('error_counts_hourly', 'month'), ('resource_samples', 'day'), ('resource_minute', 'day'),
             ('resource_hour', 'month')) AS t(name, step),
     (VALUES (interval '0'), (interval '1 day')) AS d(ahead);

-- Count the errors stored before this migration, with the endpoint key the repository computes.
DO $$
DECLARE
    month timestamptz;
BEGIN
    FOR month IN SELECT DISTINCT date_trunc('month', occurred_at) FROM probes.communication_errors LOOP
        PERFORM probes.ensure_partition('error_counts_hourly', month, 'month');
    END LOOP;
END;
$$;
INSERT INTO probes.error_counts_hourly
SELECT service_id, min(service_slug), error_type, min(error_group), endpoint_key,
       date_trunc('hour', occurred_at), count(*), min(occurred_at), max(occurred_at)
FROM (
    SELECT *, regexp_replace(split_part(split_part(coalesce(details->>'endpoint_url', ''), '#', 1), '?', 1),
                             '/([0-9]+|[0-9a-fA-F-]{16,})(?=/|$)', '/{id}', 'g') AS endpoint_key
    FROM probes.communication_errors
) AS e
GROUP BY service_id, error_type, endpoint_key, date_trunc('hour', occurred_at);
