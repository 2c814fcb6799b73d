-- The tenant an audited action was about (the job's or the key's), beside the acting key's own tenant,
-- so a tenant-scoped admin reads the entries of its tenant and no others.
ALTER TABLE gateway.audit_log ADD COLUMN target_tenant_id text;
CREATE INDEX audit_log_tenant_idx ON gateway.audit_log (tenant_id, at DESC);
CREATE INDEX audit_log_target_tenant_idx ON gateway.audit_log (target_tenant_id, at DESC);
CREATE INDEX api_keys_tenant_idx ON gateway.api_keys (tenant_id);
