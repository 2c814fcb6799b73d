-- Notification delivery (services/health/alerts/delivery, docs/adr/0018-notification-delivery.md).
--
-- notices        the outbox: every AlertNotice, inserted in the transaction that changed the alert
-- groups         per route, channel and group_by values, Alertmanager's aggregation group
-- group_alerts   which alerts a group holds, with the latest notice of each
-- notifications  one message to send over one channel (idempotency key, retries with backoff)
-- attempts       every try to send one: status, error, duration
-- Nothing references health.alerts (the lifecycle's tables): a notice carries all delivery needs.

CREATE TABLE health.notification_notices (
    id              bigserial PRIMARY KEY,
    alert_id        text NOT NULL,
    fingerprint     text NOT NULL,
    episode         integer NOT NULL,
    state           text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    severity        text NOT NULL,
    summary         text NOT NULL,
    description     text NOT NULL DEFAULT '',
    labels          jsonb NOT NULL,
    annotations     jsonb NOT NULL DEFAULT '{}',
    started_at      timestamptz NOT NULL,
    changed_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    occurrences     integer NOT NULL DEFAULT 1,
    acknowledged_by text,
    comment         text,
    silenced_by     text,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    -- Set once the notice has been put into its groups (or recorded as suppressed).
    routed_at       timestamptz
);
CREATE INDEX notification_notices_unrouted_idx ON health.notification_notices (id) WHERE routed_at IS NULL;
CREATE INDEX notification_notices_alert_idx ON health.notification_notices (alert_id);
CREATE INDEX notification_notices_submitted_idx ON health.notification_notices (submitted_at);

CREATE TABLE health.notification_groups (
    id              bigserial PRIMARY KEY,
    route           text NOT NULL,
    channel         text NOT NULL,
    group_key       text NOT NULL,
    group_labels    jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- When the worker looks at the group next (group_wait, group_interval or repeat_interval); NULL: idle.
    next_flush_at   timestamptz,
    last_sent_at    timestamptz,
    flushes         integer NOT NULL DEFAULT 0,
    UNIQUE (route, channel, group_key)
);
CREATE INDEX notification_groups_due_idx ON health.notification_groups (next_flush_at) WHERE next_flush_at IS NOT NULL;

CREATE TABLE health.notification_group_alerts (
    group_id        bigint NOT NULL REFERENCES health.notification_groups (id) ON DELETE CASCADE,
    fingerprint     text NOT NULL,
    notice_id       bigint NOT NULL REFERENCES health.notification_notices (id),
    -- Changed since the group's last message (a new firing or a resolution to tell).
    changed         boolean NOT NULL DEFAULT true,
    -- A message has told the channel this alert fires: only then is its resolution worth a message.
    told            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (group_id, fingerprint)
);

CREATE TABLE health.notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    channel         text NOT NULL,
    route           text NOT NULL,
    group_key       text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'suppressed')),
    payload         jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A sender holds a notification while it sends it; a crashed one's lease simply runs out.
    lease_until     timestamptz,
    leased_by       text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_due_idx ON health.notifications (channel, next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_created_idx ON health.notifications (created_at);

CREATE TABLE health.notification_alerts (
    notification_id uuid NOT NULL REFERENCES health.notifications (id) ON DELETE CASCADE,
    alert_id        text NOT NULL,
    PRIMARY KEY (notification_id, alert_id)
);
CREATE INDEX notification_alerts_alert_idx ON health.notification_alerts (alert_id);

CREATE TABLE health.notification_attempts (
    id              bigserial PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES health.notifications (id) ON DELETE CASCADE,
    channel         text NOT NULL,
    attempt         integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('sent', 'failed', 'suppressed')),
    error           text,
    duration_ms     double precision,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_attempts_notification_idx ON health.notification_attempts (notification_id);
