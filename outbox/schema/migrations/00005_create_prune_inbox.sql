-- +goose Up
-- An inbox row is needed only while the broker may still redeliver its
-- message. prune_inbox deletes the rows older than an age, so that the inbox
-- stays bounded.
--
-- It is SECURITY DEFINER so that a consumer's role may prune without the
-- right to DELETE from inbox (a bug there could erase the very rows that stop
-- a second effect): it deletes only rows older than the age asked, and never
-- younger than one hour. Nobody may execute it until the service grants it
-- to its consumer's role.
-- +goose StatementBegin
CREATE FUNCTION prune_inbox(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'prune_inbox: older_than must be at least 1 hour, got %', older_than;
    END IF;
    DELETE FROM inbox WHERE processed_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION prune_inbox(interval) FROM PUBLIC;

-- +goose Down
DROP FUNCTION prune_inbox(interval);
