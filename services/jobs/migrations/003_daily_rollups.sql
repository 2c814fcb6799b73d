-- Daily rollups of finished jobs, so trend views (the dashboard's 7 days, failures by type, average
-- duration) read a few hundred rows instead of scanning jobs. Days are UTC calendar days of completion.
CREATE TABLE jobs.daily_job_stats (
    day              date NOT NULL,
    tenant_id        text NOT NULL,
    job_type         text NOT NULL,
    completed        bigint NOT NULL DEFAULT 0,
    failed           bigint NOT NULL DEFAULT 0,
    cancelled        bigint NOT NULL DEFAULT 0,
    -- Sum and count of start-to-finish durations, over finished jobs that had started.
    duration_ms_sum  double precision NOT NULL DEFAULT 0,
    timed            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, tenant_id, job_type)
);

-- Maintained in the same transaction as the status change that finishes a job, whatever path wrote it
-- (worker report, cancel, reaper), so the rollup can never disagree with the jobs it counts.
CREATE FUNCTION jobs.count_finished_job() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    finished timestamptz := COALESCE(NEW.completed_at, now());
    took double precision := CASE WHEN NEW.started_at IS NOT NULL
        THEN GREATEST(0, EXTRACT(EPOCH FROM finished - NEW.started_at) * 1000) END;
BEGIN
    IF NEW.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    INSERT INTO jobs.daily_job_stats AS s (day, tenant_id, job_type, completed, failed, cancelled, duration_ms_sum, timed)
    VALUES ((finished AT TIME ZONE 'UTC')::date, NEW.tenant_id, NEW.job_type,
            (NEW.status = 'COMPLETED')::int, (NEW.status = 'FAILED')::int, (NEW.status = 'CANCELLED')::int,
            COALESCE(took, 0), (took IS NOT NULL)::int)
    ON CONFLICT (day, tenant_id, job_type) DO UPDATE SET
        completed = s.completed + EXCLUDED.completed,
        failed = s.failed + EXCLUDED.failed,
        cancelled = s.cancelled + EXCLUDED.cancelled,
        duration_ms_sum = s.duration_ms_sum + EXCLUDED.duration_ms_sum,
        timed = s.timed + EXCLUDED.timed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_count_finished
    AFTER INSERT OR UPDATE OF status ON jobs.jobs
    FOR EACH ROW EXECUTE FUNCTION jobs.count_finished_job();

-- Jobs that finished before this migration.
INSERT INTO jobs.daily_job_stats (day, tenant_id, job_type, completed, failed, cancelled, duration_ms_sum, timed)
SELECT (COALESCE(completed_at, updated_at) AT TIME ZONE 'UTC')::date, tenant_id, job_type,
       count(*) FILTER (WHERE status = 'COMPLETED'), count(*) FILTER (WHERE status = 'FAILED'),
       count(*) FILTER (WHERE status = 'CANCELLED'),
       COALESCE(sum(GREATEST(0, EXTRACT(EPOCH FROM COALESCE(completed_at, updated_at) - started_at) * 1000))
                FILTER (WHERE started_at IS NOT NULL), 0),
       count(*) FILTER (WHERE started_at IS NOT NULL)
FROM jobs.jobs
WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
GROUP BY 1, 2, 3;
