-- A filtered page sorted by progress (the dashboard's "one type by progress") walks this index by keyset
-- instead of sorting every job of the type: 456 ms → milliseconds at 1 000 000 jobs (bench/jobs_queries.py,
-- docs/adr/0021-live-path.md). Only this one: progress changes on every report, and each index on it is
-- written by every progress update.
CREATE INDEX IF NOT EXISTS jobs_type_progress_idx ON jobs.jobs (job_type, progress_percent DESC, id DESC);

-- Jobs per (status, tenant, type), so status counts and the total of a page filtered by status, tenant
-- or type read a few hundred rows instead of counting millions (issue 13: p99 ≤ 50 ms at 1 000 000 jobs).
-- Writers only append to job_count_changes (no row is updated by two transactions, so no hot row and no
-- lock order to get wrong); the jobs service's maintenance folds the changes into job_counts every few
-- seconds, in one transaction, so a reader summing both tables sees exact counts at its snapshot.
CREATE TABLE jobs.job_counts (
    status    text NOT NULL,
    tenant_id text NOT NULL,
    job_type  text NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (status, tenant_id, job_type)
);

CREATE TABLE jobs.job_count_changes (
    status    text NOT NULL,
    tenant_id text NOT NULL,
    job_type  text NOT NULL,
    delta     integer NOT NULL
);

CREATE FUNCTION jobs.count_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status AND OLD.tenant_id = NEW.tenant_id
       AND OLD.job_type = NEW.job_type THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO jobs.job_count_changes VALUES (OLD.status, OLD.tenant_id, OLD.job_type, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO jobs.job_count_changes VALUES (NEW.status, NEW.tenant_id, NEW.job_type, 1);
    END IF;
    RETURN NULL;
END;
$$;

-- Progress updates do not name these columns, so they never fire it.
CREATE TRIGGER jobs_count_change
    AFTER INSERT OR DELETE OR UPDATE OF status, tenant_id, job_type ON jobs.jobs
    FOR EACH ROW EXECUTE FUNCTION jobs.count_job_change();

-- The jobs stored before this migration (the trigger's creation waited for writers, so none is missed).
INSERT INTO jobs.job_counts (status, tenant_id, job_type, n)
SELECT status, tenant_id, job_type, count(*) FROM jobs.jobs GROUP BY 1, 2, 3;
