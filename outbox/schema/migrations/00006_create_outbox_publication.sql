-- +goose Up
-- outbox_publication is what a relay in WAL capture mode reads from its
-- logical replication slot (pgoutput): the outbox's inserts only, the one
-- change that carries a message. The relay's own deletes and updates, and
-- every other table, stay out of the stream.
--
-- A publication costs nothing while no slot reads it, and CREATE PUBLICATION
-- works on any wal_level: the server needs wal_level = logical only when a
-- relay creates its slot.
CREATE PUBLICATION outbox_publication FOR TABLE outbox WITH (publish = 'insert');

-- +goose Down
DROP PUBLICATION outbox_publication;
