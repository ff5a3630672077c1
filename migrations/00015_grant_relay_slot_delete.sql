-- +goose Up
-- A relay about to create its replication slot anew (the old one dropped or
-- lost) deletes the old slot's relay_slot row first: a row outliving its
-- slot would otherwise pass for the new slot's record if the relay stopped
-- between creating the slot and recording it, and the next start would
-- skip the rows the new slot's stream never carries.
-- +goose ENVSUB ON
SELECT set_config('outboxd.relay_role', '${OUTBOXD_RELAY_ROLE:-outboxd_relay}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
BEGIN
    -- 00010 checked the name and created the role.
    EXECUTE format('GRANT DELETE ON relay_slot TO %I', current_setting('outboxd.relay_role'));
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
        EXECUTE format('REVOKE DELETE ON relay_slot FROM %I', current_setting('outboxd.relay_role'));
    END IF;
END
$$;
-- +goose StatementEnd
