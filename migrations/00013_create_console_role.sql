-- +goose Up
-- The operator's console (`outboxd console`) gets a least-privilege role of
-- its own, beside 00010's:
--
--   console : SELECT outbox, inbox, outbox_dead_letters, dead_letters,
--             relay_leader, relay_slot; INSERT outbox (a replayed dead letter
--             goes back into it); DELETE outbox_dead_letters and dead_letters
--             (replay moves a dead letter, purge drops it).
--
-- Nothing of users, profiles, audit_log or idempotency_keys, no UPDATE
-- anywhere, no DELETE on the outbox: a console that is broken into can
-- re-drive and drop dead letters and enqueue messages, and no more.
--
-- Like 00010's it is a NOLOGIN privilege bundle (make a login user a member:
-- CREATE ROLE console_1 LOGIN PASSWORD '…' IN ROLE outboxd_console), named by
-- OUTBOXD_CONSOLE_ROLE in the environment of whoever migrates, created only
-- if missing (roles are cluster-wide, grants are per database) and dropped
-- by Down only when no other database still uses it.
-- +goose ENVSUB ON
SELECT set_config('outboxd.console_role', '${OUTBOXD_CONSOLE_ROLE:-outboxd_console}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
DECLARE
    console text := current_setting('outboxd.console_role');
    s       text := current_schema();
BEGIN
    -- The name is spliced into the migration by ENVSUB: accept a plain
    -- identifier only.
    IF console !~ '^[a-z_][a-z0-9_]{0,62}$' OR console LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'OUTBOXD_CONSOLE_ROLE=% is not a valid role name (lower-case letters, digits and _, not starting with pg_)', console;
    END IF;
    IF console = current_user THEN
        RAISE EXCEPTION 'OUTBOXD_CONSOLE_ROLE=% names the migrating role itself', console;
    END IF;
    -- Sharing a role with another process would give one the other's grants.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = console
               AND shobj_description(oid, 'pg_authid') = 'outboxd least-privilege role, created by migration 00010') THEN
        RAISE EXCEPTION 'OUTBOXD_CONSOLE_ROLE=% names one of the roles of migration 00010: the console needs a role of its own', console;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = console) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', console);
            EXECUTE format('COMMENT ON ROLE %I IS %L', console, 'outboxd least-privilege role, created by migration 00013');
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database's migration created it meanwhile
        END;
    END IF;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, console);
    EXECUTE format('GRANT SELECT, INSERT ON %I.outbox TO %I', s, console);
    EXECUTE format('GRANT SELECT ON %I.inbox, %I.relay_leader, %I.relay_slot TO %I', s, s, s, console);
    EXECUTE format('GRANT SELECT, DELETE ON %I.outbox_dead_letters, %I.dead_letters TO %I', s, s, console);
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose ENVSUB ON
SELECT set_config('outboxd.console_role', '${OUTBOXD_CONSOLE_ROLE:-outboxd_console}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
DECLARE
    console text := current_setting('outboxd.console_role');
    s       text := current_schema();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = console) THEN
        RETURN;
    END IF;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, console);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', s, console);
    -- Only a role this migration created, and only once no other database
    -- grants it anything: DROP ROLE refuses while any does.
    IF shobj_description((SELECT oid FROM pg_roles WHERE rolname = console), 'pg_authid')
        IS DISTINCT FROM 'outboxd least-privilege role, created by migration 00013' THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('DROP ROLE %I', console);
    EXCEPTION
        WHEN dependent_objects_still_exist THEN
            NULL; -- still used by another database on this server
        WHEN internal_error THEN
            -- "cache lookup failed for database": another database of the
            -- server was being dropped while DROP ROLE read its grants. The
            -- role is shared; leaving it is harmless.
            NULL;
    END;
END
$$;
-- +goose StatementEnd
