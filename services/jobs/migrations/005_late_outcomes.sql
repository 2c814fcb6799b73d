-- A worker's own outcome may replace a reap's presumption (FAILED/WORKER_LOST → COMPLETED, see
-- docs/reliability.md): the rollup then moves the job from one counter to the other instead of
-- counting it once as failed forever.
CREATE FUNCTION jobs.add_finished_job(j jobs.jobs, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    finished timestamptz := COALESCE(j.completed_at, now());
    took double precision := CASE WHEN j.started_at IS NOT NULL
        THEN GREATEST(0, EXTRACT(EPOCH FROM finished - j.started_at) * 1000) END;
BEGIN
    INSERT INTO jobs.daily_job_stats AS s (day, tenant_id, job_type, completed, failed, cancelled, duration_ms_sum, timed)
    VALUES ((finished AT TIME ZONE 'UTC')::date, j.tenant_id, j.job_type,
            sign * (j.status = 'COMPLETED')::int, sign * (j.status = 'FAILED')::int,
            sign * (j.status = 'CANCELLED')::int, sign * COALESCE(took, 0), sign * (took IS NOT NULL)::int)
    ON CONFLICT (day, tenant_id, job_type) DO UPDATE SET
        completed = s.completed + EXCLUDED.completed,
        failed = s.failed + EXCLUDED.failed,
        cancelled = s.cancelled + EXCLUDED.cancelled,
        duration_ms_sum = s.duration_ms_sum + EXCLUDED.duration_ms_sum,
        timed = s.timed + EXCLUDED.timed;
END;
$$;

CREATE OR REPLACE FUNCTION jobs.count_finished_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        IF OLD.status = NEW.status THEN
            RETURN NULL;
        END IF;
        PERFORM jobs.add_finished_job(OLD, -1);
    END IF;
    PERFORM jobs.add_finished_job(NEW, 1);
    RETURN NULL;
END;
$$;
