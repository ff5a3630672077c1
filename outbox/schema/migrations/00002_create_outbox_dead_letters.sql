-- +goose Up
-- outbox_dead_letters keeps the messages the broker rejected for good, after
-- the relay's last attempt, with that attempt's error, until an operator
-- replays them into the outbox or purges them. The columns are the outbox's,
-- so a row moves with INSERT ... SELECT; id is the id it had in the outbox.
CREATE TABLE outbox_dead_letters (
    id              bigint      PRIMARY KEY,
    message_id      uuid        NOT NULL,
    topic           text        NOT NULL,
    key             text        NOT NULL,
    payload         bytea       NOT NULL,
    metadata        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    xid             xid8        NOT NULL,
    attempts        integer     NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL,
    published_at    timestamptz,
    failed_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_dead_letters_failed_at_idx ON outbox_dead_letters (failed_at);

-- A message waiting for its next attempt after a permanent failure holds back
-- the later messages of its key, which the relay finds through this index.
-- Only such rows (attempts > 0) are in it, so the insert path of a signup
-- still pays for no index but the primary key.
CREATE INDEX outbox_retrying_key_idx ON outbox (key, id) WHERE attempts > 0;

-- +goose Down
DROP INDEX outbox_retrying_key_idx;
DROP TABLE outbox_dead_letters;
