-- +goose Up
-- outbox holds messages written in the same transaction as the change they
-- announce. The relay publishes a row once its writing transaction (xid) is
-- older than every transaction still in flight, then deletes it (or sets
-- published_at when a retention is configured).
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      uuid        NOT NULL,
    topic           text        NOT NULL CHECK (topic <> ''),
    key             text        NOT NULL DEFAULT '',
    payload         bytea       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    published_at    timestamptz
);

-- Only published rows kept for retention are indexed, so the insert path of a
-- signup pays for no index but the primary key.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
