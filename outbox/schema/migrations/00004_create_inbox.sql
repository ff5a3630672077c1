-- +goose Up
-- inbox remembers which messages each handler has processed. A handler writes
-- its effect and its inbox row in one transaction, so a redelivered message
-- finds the row and has no second effect (idempotent consumer).
CREATE TABLE inbox (
    handler      text        NOT NULL CHECK (handler <> ''),
    message_id   uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, message_id)
);

-- Pruning old rows scans by age.
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);

-- +goose Down
DROP TABLE inbox;
