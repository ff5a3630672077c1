-- +goose Up
-- relay_slot remembers, for each replication slot a relay in WAL capture
-- created, the snapshot the slot exported: the rows visible in it are the
-- ones the stream will never carry, which the relay publishes from the table
-- before it streams. Until drained_at is set, a relay that starts on the slot
-- (after a crash mid-way, say) publishes what is left of them first; a slot
-- without a row here has an unknown past and is replaced.
CREATE TABLE relay_slot (
    slot_name  text        PRIMARY KEY,
    snapshot   pg_snapshot NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    drained_at timestamptz
);

-- +goose Down
DROP TABLE relay_slot;
