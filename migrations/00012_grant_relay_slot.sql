-- +goose Up
-- The relay records its replication slot's snapshot in the outbox library's
-- relay_slot (library migration 00007) and marks it drained.
-- +goose ENVSUB ON
SELECT set_config('outboxd.relay_role', '${OUTBOXD_RELAY_ROLE:-outboxd_relay}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
BEGIN
    -- 00010 checked the name and created the role.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON relay_slot TO %I', current_setting('outboxd.relay_role'));
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose ENVSUB ON
SELECT set_config('outboxd.relay_role', '${OUTBOXD_RELAY_ROLE:-outboxd_relay}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_setting('outboxd.relay_role')) THEN
        EXECUTE format('REVOKE ALL ON relay_slot FROM %I', current_setting('outboxd.relay_role'));
    END IF;
END
$$;
-- +goose StatementEnd
