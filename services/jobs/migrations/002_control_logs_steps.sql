-- Retry scheduling, cancellation, log sequencing; steps; partitioned execution logs.
ALTER TABLE jobs.jobs
    ADD COLUMN available_at   timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN cancel_reason  text,
    ADD COLUMN log_sequence   bigint NOT NULL DEFAULT 0;

-- One retry per job: two retry clicks at once make one new attempt.
CREATE UNIQUE INDEX jobs_one_retry_per_job ON jobs.jobs (retry_of_job_id) WHERE retry_of_job_id IS NOT NULL;

DROP INDEX jobs.jobs_queued_idx;
CREATE INDEX jobs_claimable_idx ON jobs.jobs (job_type, available_at, created_at) WHERE status = 'QUEUED';

CREATE TABLE jobs.job_steps (
    job_id       uuid NOT NULL REFERENCES jobs.jobs (id) ON DELETE CASCADE,
    idx          integer NOT NULL CHECK (idx >= 0),
    name         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED')),
    started_at   timestamptz,
    completed_at timestamptz,
    message      text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, idx)
);

-- Execution logs, partitioned by the day they were received so retention drops whole partitions.
-- `ts` is the job's own millisecond timestamp; `received_at` is the server's (the partition key).
CREATE TABLE jobs.job_logs (
    job_id       uuid NOT NULL,
    sequence     bigint NOT NULL,
    level        smallint NOT NULL,
    message      text NOT NULL,
    ts           timestamptz NOT NULL,
    stack_trace  text,
    context      jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, sequence, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX job_logs_job_seq_idx ON jobs.job_logs (job_id, sequence);
-- PostgreSQL full-text search over messages, used when Elasticsearch is not configured.
CREATE INDEX job_logs_fts_idx ON jobs.job_logs USING gin (to_tsvector('simple', message));
