-- +goose Up
-- Least-privilege roles, one per process, so that a bug (or an attacker) in
-- one of them can do no more than that process needs:
--
--   api    : INSERT users, outbox, idempotency_keys; SELECT users (not
--            password_hash) and idempotency_keys; UPDATE the response
--            columns of idempotency_keys.
--   relay  : SELECT, DELETE and mark (UPDATE the delivery columns of) outbox;
--            write outbox_dead_letters and relay_leader; advisory locks and
--            LISTEN need no grant. Member of pg_read_all_stats so that its
--            horizon metric sees other roles' open transactions.
--   worker : INSERT profiles, audit_log, inbox, dead_letters (and UPDATE its
--            error columns); SELECT profiles, users (not password_hash),
--            inbox, dead_letters.
--
-- Nobody gets UPDATE, DELETE or TRUNCATE on audit_log (and 00008's trigger
-- stops the owner too). `migrate`, `status` and `dlq` run as the owner.
--
-- The roles are NOLOGIN privilege bundles: give one a password
-- (ALTER ROLE outboxd_api LOGIN PASSWORD '…') or make login users members of
-- it (CREATE ROLE api_1 LOGIN PASSWORD '…' IN ROLE outboxd_api). No password
-- ever appears here. Their names come from the environment of whoever runs
-- the migration (OUTBOXD_API_ROLE, OUTBOXD_RELAY_ROLE, OUTBOXD_WORKER_ROLE);
-- the migrating user needs CREATEROLE, or the roles must exist already.
--
-- Roles are cluster-wide while grants belong to one database: several
-- databases on one server (test databases cloned from one template, many at
-- once) share the roles, so they are created only if missing, tolerating a
-- concurrent creation, and the Down migration revokes this database's grants
-- but drops a role only when no other database still uses it.
-- +goose ENVSUB ON
SELECT set_config('outboxd.api_role', '${OUTBOXD_API_ROLE:-outboxd_api}', true),
       set_config('outboxd.relay_role', '${OUTBOXD_RELAY_ROLE:-outboxd_relay}', true),
       set_config('outboxd.worker_role', '${OUTBOXD_WORKER_ROLE:-outboxd_worker}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
DECLARE
    api    text := current_setting('outboxd.api_role');
    relay  text := current_setting('outboxd.relay_role');
    worker text := current_setting('outboxd.worker_role');
    s      text := current_schema();
    r      record;
BEGIN
    FOR r IN SELECT * FROM (VALUES ('OUTBOXD_API_ROLE', api), ('OUTBOXD_RELAY_ROLE', relay),
                                   ('OUTBOXD_WORKER_ROLE', worker)) AS v(var, name) LOOP
        -- The names are spliced into the migration by ENVSUB: accept plain
        -- identifiers only.
        IF r.name !~ '^[a-z_][a-z0-9_]{0,62}$' OR r.name LIKE 'pg\_%' THEN
            RAISE EXCEPTION '%=% is not a valid role name (lower-case letters, digits and _, not starting with pg_)', r.var, r.name;
        END IF;
        IF r.name = current_user THEN
            RAISE EXCEPTION '%=% names the migrating role itself', r.var, r.name;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r.name);
                EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, 'outboxd least-privilege role, created by migration 00010');
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database's migration created it meanwhile
            END;
        END IF;
    END LOOP;
    IF api = relay OR api = worker OR relay = worker THEN
        RAISE EXCEPTION 'OUTBOXD_API_ROLE, OUTBOXD_RELAY_ROLE and OUTBOXD_WORKER_ROLE must be three different roles';
    END IF;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I, %I', s, api, relay, worker);

    -- Column grants on users keep password_hash out of reach of any query.
    EXECUTE format('GRANT SELECT (id, email, name, created_at), INSERT ON %I.users TO %I', s, api);
    EXECUTE format('GRANT INSERT ON %I.outbox TO %I', s, api);
    EXECUTE format('GRANT SELECT, INSERT ON %I.idempotency_keys TO %I', s, api);
    EXECUTE format('GRANT UPDATE (status, response_body, headers) ON %I.idempotency_keys TO %I', s, api);

    EXECUTE format('GRANT SELECT, DELETE ON %I.outbox TO %I', s, relay);
    EXECUTE format('GRANT UPDATE (published_at, attempts, last_error, next_attempt_at) ON %I.outbox TO %I', s, relay);
    EXECUTE format('GRANT SELECT, INSERT ON %I.outbox_dead_letters TO %I', s, relay);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.relay_leader TO %I', s, relay);

    EXECUTE format('GRANT SELECT, INSERT ON %I.profiles TO %I', s, worker);
    EXECUTE format('GRANT SELECT (id, email, name, created_at) ON %I.users TO %I', s, worker);
    EXECUTE format('GRANT INSERT ON %I.audit_log TO %I', s, worker);
    EXECUTE format('GRANT SELECT, INSERT ON %I.inbox TO %I', s, worker);
    EXECUTE format('GRANT SELECT, INSERT ON %I.dead_letters TO %I', s, worker);
    EXECUTE format('GRANT UPDATE (error, attempts, failed_at) ON %I.dead_letters TO %I', s, worker);

    -- Without it pg_stat_activity hides other roles' xact_start, and the
    -- relay's horizon metric would never see the API's long transactions.
    -- Best effort: from PostgreSQL 16 only a superuser (or a holder of its
    -- ADMIN OPTION) may grant it, and the metric is not worth failing for.
    IF NOT pg_has_role(relay, 'pg_read_all_stats', 'USAGE') THEN
        BEGIN
            EXECUTE format('GRANT pg_read_all_stats TO %I', relay);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot grant pg_read_all_stats to %: outboxd_relay_horizon_age_seconds will only see its own sessions', relay;
            WHEN unique_violation THEN
                NULL; -- granted concurrently
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose ENVSUB ON
SELECT set_config('outboxd.api_role', '${OUTBOXD_API_ROLE:-outboxd_api}', true),
       set_config('outboxd.relay_role', '${OUTBOXD_RELAY_ROLE:-outboxd_relay}', true),
       set_config('outboxd.worker_role', '${OUTBOXD_WORKER_ROLE:-outboxd_worker}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
DECLARE
    s    text := current_schema();
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY[current_setting('outboxd.api_role'),
                                current_setting('outboxd.relay_role'),
                                current_setting('outboxd.worker_role')] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, role);
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', s, role);
        -- Only roles this migration created, and only once no other database
        -- grants them anything: DROP ROLE refuses while any does.
        CONTINUE WHEN shobj_description((SELECT oid FROM pg_roles WHERE rolname = role), 'pg_authid')
            IS DISTINCT FROM 'outboxd least-privilege role, created by migration 00010';
        BEGIN
            EXECUTE format('DROP ROLE %I', role);
        EXCEPTION
            WHEN dependent_objects_still_exist THEN
                NULL; -- still used by another database on this server
            WHEN internal_error THEN
                -- "cache lookup failed for database": another database of the
                -- server was being dropped while DROP ROLE read its grants. The
                -- role is shared; leaving it is harmless.
                NULL;
        END;
    END LOOP;
END
$$;
-- +goose StatementEnd
