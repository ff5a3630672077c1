-- +goose Up
-- audit_log is append-only: rows are inserted, never changed or removed.
CREATE TABLE audit_log (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event          text        NOT NULL CHECK (event <> ''),
    actor          text        NOT NULL,
    subject        text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    correlation_id text        NOT NULL DEFAULT '',
    message_id     uuid,
    payload        jsonb,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_subject_idx ON audit_log (subject, occurred_at);
CREATE INDEX audit_log_message_id_idx ON audit_log (message_id) WHERE message_id IS NOT NULL;

-- Nobody but the owner gets to change history...
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- ...and grants do not bind the owner, so a trigger refuses it too.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
