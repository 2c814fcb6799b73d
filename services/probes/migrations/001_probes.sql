-- Connection tests: one row per test (on demand or by an agent), evidence of its last attempt.
CREATE TABLE probes.connection_tests (
    id                      uuid PRIMARY KEY,
    service_id              text NOT NULL,
    service_slug            text NOT NULL,
    executed_at             timestamptz NOT NULL,
    success                 boolean NOT NULL,
    degraded                boolean NOT NULL DEFAULT false,
    probe_kind              text NOT NULL,
    -- Sanitized: no credentials, no secret query values.
    endpoint                text NOT NULL,
    correlation_id          uuid NOT NULL,
    speed_rating            text CHECK (speed_rating IN ('FAST', 'NORMAL', 'SLOW')),
    total_latency_ms        double precision NOT NULL,
    summary                 text NOT NULL,
    error_type              text,
    error_group             text,
    severity                text,
    error_code              text,
    communication_error_id  uuid,
    -- ConnectionTestMetrics, phases, recommendations and masked evidence, read whole by GetConnectionTest.
    metrics                 jsonb NOT NULL,
    phases                  jsonb NOT NULL,
    recommendations         jsonb NOT NULL,
    evidence                jsonb NOT NULL
);
CREATE INDEX connection_tests_service_idx ON probes.connection_tests (service_id, executed_at DESC, id DESC);
CREATE INDEX connection_tests_slug_idx ON probes.connection_tests (service_slug, executed_at DESC, id DESC);
CREATE INDEX connection_tests_executed_idx ON probes.connection_tests (executed_at DESC, id DESC);

-- Communication errors, partitioned by month so retention drops whole partitions instead of
-- deleting rows. Partitions are created ahead by `ensure_communication_errors_partition`, which
-- the repository calls for the month of each error it has not seen a partition for yet.
CREATE TABLE probes.communication_errors (
    id                  uuid NOT NULL,
    occurred_at         timestamptz NOT NULL,
    service_id          text NOT NULL,
    service_slug        text NOT NULL,
    error_type          text NOT NULL,
    error_group         text NOT NULL,
    severity            text NOT NULL CHECK (severity IN ('WARNING', 'ERROR', 'CRITICAL')),
    error_code          text NOT NULL,
    message             text NOT NULL,
    correlation_id      uuid NOT NULL,
    connection_test_id  uuid,
    correlated_job_id   uuid,
    recommendations     jsonb NOT NULL DEFAULT '[]',
    -- CommunicationErrorDetails, masked.
    details             jsonb NOT NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX communication_errors_service_idx ON probes.communication_errors (service_id, occurred_at DESC, id DESC);
CREATE INDEX communication_errors_slug_idx ON probes.communication_errors (service_slug, occurred_at DESC, id DESC);
CREATE INDEX communication_errors_type_idx ON probes.communication_errors (error_type, occurred_at DESC);
CREATE INDEX communication_errors_time_idx ON probes.communication_errors (occurred_at DESC, id DESC);

-- Creates the month partition holding `at` unless it exists; returns its name. Serialised by an
-- advisory lock so replicas that hit a new month together do not race on CREATE TABLE.
CREATE FUNCTION probes.ensure_communication_errors_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := 'communication_errors_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('probes.communication_errors'));
    IF to_regclass('probes.' || name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE probes.%I PARTITION OF probes.communication_errors FOR VALUES FROM (%L) TO (%L)',
            name, month_start, month_start + interval '1 month');
    END IF;
    RETURN name;
END;
$$;

-- This month and the next exist from the start.
SELECT probes.ensure_communication_errors_partition(now());
SELECT probes.ensure_communication_errors_partition(now() + interval '1 month');
