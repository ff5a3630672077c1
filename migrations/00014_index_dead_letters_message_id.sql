-- +goose Up
-- The console finds a message's dead letters by its id: dead_letters'
-- unique (handler, message_id) does not serve a lookup without the handler,
-- and outbox_dead_letters (the outbox library's table) has no index on it.
-- Both are dead-letter tables, written only when a message fails for good:
-- the outbox's insert path pays for neither.
CREATE INDEX dead_letters_message_id_idx ON dead_letters (message_id);
CREATE INDEX outbox_dead_letters_message_id_idx ON outbox_dead_letters (message_id);

-- +goose Down
DROP INDEX outbox_dead_letters_message_id_idx;
DROP INDEX dead_letters_message_id_idx;
