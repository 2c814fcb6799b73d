-- Communication errors reported by the Job SDK for a job's failed call carry the job's tenant, so a
-- tenant-scoped API key sees errors correlated to its own jobs and never another tenant's
-- (docs/adr/0022-job-error-correlation.md). Errors the probes found themselves have no tenant.
ALTER TABLE probes.communication_errors ADD COLUMN tenant_id text;
CREATE INDEX communication_errors_job_idx ON probes.communication_errors (correlated_job_id, occurred_at DESC)
    WHERE correlated_job_id IS NOT NULL;
