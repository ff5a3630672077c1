-- +goose Up
-- Idempotency keys and inbox rows are needed only for a while: a client
-- retries a signup within minutes, a broker redelivers a message within its
-- own retention. prune_idempotency_keys deletes the keys older than an age,
-- and prune_inbox (the outbox library's migration 00005) the inbox rows, so
-- that both tables stay bounded.
--
-- The api and worker roles may not DELETE from these tables (00010): a bug
-- there could erase the very rows that stop a second user or a second
-- effect. These SECURITY DEFINER functions are all they get: they delete
-- only rows older than the age asked, and never younger than one hour.
-- Databases migrated before the library had its own migrations created both
-- functions here; their prune_inbox is recorded as the library's 00005.
-- +goose StatementBegin
CREATE FUNCTION prune_idempotency_keys(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_idempotency_keys: older_than must be at least 1 hour, got %', older_than;
    END IF;
    DELETE FROM idempotency_keys WHERE created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION prune_idempotency_keys(interval) FROM PUBLIC;

-- +goose ENVSUB ON
SELECT set_config('outboxd.api_role', '${OUTBOXD_API_ROLE:-outboxd_api}', true),
       set_config('outboxd.worker_role', '${OUTBOXD_WORKER_ROLE:-outboxd_worker}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
BEGIN
    -- 00010 checked the names and created the roles.
    EXECUTE format('GRANT EXECUTE ON FUNCTION prune_idempotency_keys(interval) TO %I', current_setting('outboxd.api_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION prune_inbox(interval) TO %I', current_setting('outboxd.worker_role'));
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose ENVSUB ON
SELECT set_config('outboxd.worker_role', '${OUTBOXD_WORKER_ROLE:-outboxd_worker}', true);
-- +goose ENVSUB OFF

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_setting('outboxd.worker_role')) THEN
        EXECUTE format('REVOKE EXECUTE ON FUNCTION prune_inbox(interval) FROM %I', current_setting('outboxd.worker_role'));
    END IF;
END
$$;
-- +goose StatementEnd

DROP FUNCTION prune_idempotency_keys(interval);
