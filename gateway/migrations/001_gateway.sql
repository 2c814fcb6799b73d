-- API keys: only a hash of the secret part is stored; the key is shown once, when created.
CREATE TABLE gateway.api_keys (
    id           text PRIMARY KEY,              -- the public part of the key: b2x_<id>_<secret>
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    tenant_id    text,                          -- NULL: all tenants
    secret_hash  text NOT NULL,                 -- sha256 of the secret part, hex
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL DEFAULT '',
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

-- Who did what, when: every mutation and every key change, with its outcome.
CREATE TABLE gateway.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_id      text,
    key_name    text,
    role        text,
    tenant_id   text,
    action      text NOT NULL,
    target      text,
    arguments   jsonb NOT NULL DEFAULT '{}',
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'error')),
    error_code  text,
    request_id  text,
    client_ip   text
);
CREATE INDEX audit_log_at_idx ON gateway.audit_log (at DESC);
CREATE INDEX audit_log_target_idx ON gateway.audit_log (target, at DESC);
