-- Self-monitoring: B2X's own PostgreSQL, Redis and services are connected services too, owned by the
-- health service (source 'self') rather than by the config file or the API.
ALTER TABLE health.services DROP CONSTRAINT services_source_check;
ALTER TABLE health.services ADD CONSTRAINT services_source_check CHECK (source IN ('file', 'api', 'self'));

-- The last real failure of a service's checks ("CERTIFICATE_EXPIRED (the TLS certificate ... expired ...)"),
-- kept while the circuit breaker is open and the checks that follow are not sent: the status reason shows it.
ALTER TABLE health.services ADD COLUMN last_failure text NOT NULL DEFAULT '';
