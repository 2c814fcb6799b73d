-- The audit log is append-only, enforced by the database rather than by convention: any UPDATE, DELETE
-- or TRUNCATE fails, whoever runs it (triggers fire for the table's owner and for superusers too).
CREATE FUNCTION gateway.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gateway.audit_log is append-only; % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON gateway.audit_log
    FOR EACH ROW EXECUTE FUNCTION gateway.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON gateway.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON gateway.audit_log FROM PUBLIC, CURRENT_USER;
