-- The outbox of the durable job-outcome feed (jobs → health, services/jobs/outcomes.py).
-- A row is written by a trigger in the same transaction as the status change that finishes a job,
-- whatever path wrote it (worker report, cancel, reaper), so an outcome can be neither lost nor
-- invented. The relay appends the rows to the Redis Stream `{namespace}:jobs:outcomes` and deletes
-- them in one transaction (at least once; health stores each job's outcome once).
CREATE TABLE jobs.outcome_outbox (
    seq             bigserial PRIMARY KEY,
    job_id          uuid NOT NULL,
    job_type        text NOT NULL,
    tenant_id       text NOT NULL,
    status          text NOT NULL,
    attempt         integer NOT NULL,
    max_attempts    integer NOT NULL,
    error_class     text,
    error_category  text,
    error_message   text,
    finished_at     timestamptz NOT NULL
);

CREATE FUNCTION jobs.queue_job_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    INSERT INTO jobs.outcome_outbox (job_id, job_type, tenant_id, status, attempt, max_attempts, error_class,
                                     error_category, error_message, finished_at)
    VALUES (NEW.id, NEW.job_type, NEW.tenant_id, NEW.status, NEW.attempt, NEW.max_attempts, NEW.error_class,
            NEW.error_category, left(NEW.error_message, 1000), COALESCE(NEW.completed_at, now()));
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_queue_outcome
    AFTER INSERT OR UPDATE OF status ON jobs.jobs
    FOR EACH ROW EXECUTE FUNCTION jobs.queue_job_outcome();
