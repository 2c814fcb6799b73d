-- The alert lifecycle (services/health/alerts): alerts deduplicated by fingerprint, their episodes,
-- silences, threshold overrides and the job outcomes the job rules count. ADR 0017.

-- One row per fingerprint (rule + identifying labels): the alert across all of its episodes.
CREATE TABLE health.alerts (
    id              uuid PRIMARY KEY,
    fingerprint     text NOT NULL UNIQUE,
    rule            text NOT NULL,
    labels          jsonb NOT NULL,
    -- Copied from the labels for the filters and the tenant scope ('' = no tenant).
    tenant_id       text NOT NULL DEFAULT '',
    service         text NOT NULL DEFAULT '',
    episode         integer NOT NULL CHECK (episode >= 1),
    created_at      timestamptz NOT NULL
);
CREATE INDEX alerts_tenant_idx ON health.alerts (tenant_id);

-- One row per firing: re-firing after resolution starts a new episode. Kept a year (maintenance).
CREATE TABLE health.alert_episodes (
    alert_id         uuid NOT NULL REFERENCES health.alerts (id) ON DELETE CASCADE,
    episode          integer NOT NULL,
    state            text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    severity         text NOT NULL CHECK (severity IN ('critical', 'error', 'warning', 'info')),
    summary          text NOT NULL,
    description      text NOT NULL,
    occurrences      integer NOT NULL CHECK (occurrences >= 1),
    started_at       timestamptz NOT NULL,
    last_fired_at    timestamptz NOT NULL,
    changed_at       timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    ack_comment      text,
    resolved_at      timestamptz,
    -- NULL: resolved automatically when the condition cleared; else who resolved it by hand.
    resolved_by      text,
    resolve_comment  text,
    -- The silence that matched when the episode last changed (notifications suppressed).
    silenced_by      uuid,
    annotations      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (alert_id, episode)
);
CREATE INDEX alert_episodes_open_idx ON health.alert_episodes (alert_id) WHERE state <> 'resolved';
CREATE INDEX alert_episodes_changed_idx ON health.alert_episodes (changed_at DESC, alert_id, episode);

-- Silences: label matchers (all must match), a time window, who made it and why.
CREATE TABLE health.silences (
    id          uuid PRIMARY KEY,
    matchers    jsonb NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    comment     text NOT NULL,
    -- Set for silences made by a tenant-scoped key: they match only that tenant's alerts.
    tenant_id   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    expired_by  text,
    CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_active_idx ON health.silences (ends_at);

-- Resource thresholds set over the API. The declarative file stays the default: a service without an
-- override keeps the file's (or its registration's) thresholds; a file sync never overwrites these.
CREATE TABLE health.threshold_overrides (
    service_id  uuid PRIMARY KEY REFERENCES health.services (id) ON DELETE CASCADE,
    thresholds  jsonb NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Failed jobs from the job-outcome feed, once per job (a redelivered outcome changes nothing), for
-- the failure-rate window. Kept a day.
CREATE TABLE health.job_failures (
    job_id      uuid PRIMARY KEY,
    job_type    text NOT NULL,
    tenant_id   text NOT NULL,
    failed_at   timestamptz NOT NULL,
    final       boolean NOT NULL
);
CREATE INDEX job_failures_window_idx ON health.job_failures (job_type, tenant_id, failed_at);
