-- The W3C trace id of the request that did the action, when tracing is on (services/common/tracing.py):
-- the audit entry leads to the whole request's spans in Jaeger or any OTLP backend.
ALTER TABLE gateway.audit_log ADD COLUMN trace_id text;
