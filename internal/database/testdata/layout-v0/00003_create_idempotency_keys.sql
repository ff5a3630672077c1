-- +goose Up
-- idempotency_keys remembers the first response to a request sent with an
-- Idempotency-Key header, so a retry gets the same answer and no second effect.
CREATE TABLE idempotency_keys (
    key           text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea       NOT NULL,
    status        integer     NOT NULL,
    response_body bytea       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
