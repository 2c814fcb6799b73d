-- Scheduler jobs: one row per attempt; a retry is a new row linked to the one it retries.
CREATE TABLE jobs.jobs (
    id                  uuid PRIMARY KEY,
    job_type            text NOT NULL,
    tenant_id           text NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    -- Lifecycle order, so "sort by status" reads queued, running, then the finished ones.
    status_rank         smallint GENERATED ALWAYS AS (
        CASE status WHEN 'QUEUED' THEN 1 WHEN 'RUNNING' THEN 2 WHEN 'COMPLETED' THEN 3
                    WHEN 'FAILED' THEN 4 ELSE 5 END) STORED,
    parameters          jsonb NOT NULL DEFAULT '{}',
    metadata            jsonb NOT NULL DEFAULT '{}',
    attempt             integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    max_attempts        integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    root_job_id         uuid NOT NULL,
    retry_of_job_id     uuid REFERENCES jobs.jobs (id),
    idempotency_key     text UNIQUE,
    created_by          text NOT NULL DEFAULT '',
    worker_id           text,
    total_items         bigint NOT NULL DEFAULT 0 CHECK (total_items >= 0),
    processed_items     bigint NOT NULL DEFAULT 0 CHECK (processed_items >= 0),
    succeeded_items     bigint NOT NULL DEFAULT 0 CHECK (succeeded_items >= 0),
    failed_items        bigint NOT NULL DEFAULT 0 CHECK (failed_items >= 0),
    progress_percent    double precision NOT NULL DEFAULT 0,
    items_per_second    double precision NOT NULL DEFAULT 0,
    eta_seconds         double precision,
    progress_message    text NOT NULL DEFAULT '',
    progress_sequence   bigint NOT NULL DEFAULT 0,
    progress_updated_at timestamptz,
    error_message       text,
    error_category      text,
    error_class         text CHECK (error_class IN ('TRANSIENT', 'PERMANENT')),
    error_stack_trace   text,
    cancel_requested    boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    completed_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at   timestamptz
);

-- Keyset pagination: every sortable column is indexed together with id, the tie-breaker.
CREATE INDEX jobs_created_idx ON jobs.jobs (created_at DESC, id DESC);
CREATE INDEX jobs_updated_idx ON jobs.jobs (updated_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs.jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_created_idx ON jobs.jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX jobs_type_created_idx ON jobs.jobs (job_type, created_at DESC, id DESC);
CREATE INDEX jobs_root_idx ON jobs.jobs (root_job_id, attempt);
-- Workers claim the oldest queued job of their types.
CREATE INDEX jobs_queued_idx ON jobs.jobs (job_type, created_at) WHERE status = 'QUEUED';
-- The reaper looks for running jobs whose heartbeat stopped.
CREATE INDEX jobs_running_heartbeat_idx ON jobs.jobs (last_heartbeat_at) WHERE status = 'RUNNING';
