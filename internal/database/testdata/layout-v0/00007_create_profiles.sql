-- +goose Up
-- profiles holds one row per user, created by the worker from user.created.
CREATE TABLE profiles (
    user_id      uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name text        NOT NULL,
    bio          text        NOT NULL DEFAULT '',
    avatar_url   text        NOT NULL DEFAULT '',
    locale       text        NOT NULL DEFAULT 'en',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE profiles;
