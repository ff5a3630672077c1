-- +goose Up
-- dead_letters keeps messages a handler gave up on, with the last error, until
-- an operator replays them (back into the outbox) or purges them.
CREATE TABLE dead_letters (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handler    text        NOT NULL CHECK (handler <> ''),
    message_id uuid        NOT NULL,
    topic      text        NOT NULL,
    payload    bytea       NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}',
    error      text        NOT NULL,
    attempts   integer     NOT NULL CHECK (attempts > 0),
    failed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (handler, message_id)
);

CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at);

-- +goose Down
DROP TABLE dead_letters;
