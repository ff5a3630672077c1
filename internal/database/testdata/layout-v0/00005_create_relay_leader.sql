-- +goose Up
-- relay_leader names the relay replica that holds the leader lock (a session
-- advisory lock on lock_key) and is publishing. The leader refreshes
-- heartbeat_at every few seconds; a stale heartbeat means no replica leads.
CREATE TABLE relay_leader (
    lock_key     bigint      PRIMARY KEY,
    name         text        NOT NULL,
    since        timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE relay_leader;
