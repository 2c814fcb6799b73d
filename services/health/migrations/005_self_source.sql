-- Self-monitoring: B2X's own PostgreSQL, Redis and services are connected services too, owned by the
-- health service (source 'self') rather than by the config file or the API.
ALTER TABLE health.services DROP CONSTRAINT services_source_check;
ALTER TABLE health.services ADD CONSTRAINT services_source_check CHECK (source IN ('file', 'api', 'self'));
