package console_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

// refusedToConsole are statements outside the console's job, each valid on
// an existing table (the owner would run it): a grant too many makes its
// subtest fail.
var refusedToConsole = []string{
	// Other components' tables.
	`SELECT id FROM users`,
	`SELECT password_hash FROM users`,
	`INSERT INTO users (id, email, name, password_hash) VALUES (gen_random_uuid(), 'a@b.c', 'n', 'h')`,
	`UPDATE users SET name = 'x'`,
	`DELETE FROM users`,
	`SELECT user_id FROM profiles`,
	`INSERT INTO profiles (user_id, display_name) VALUES (gen_random_uuid(), 'x')`,
	`SELECT id FROM audit_log`,
	`INSERT INTO audit_log (event, actor, subject, occurred_at) VALUES ('e', 'a', 's', now())`,
	`SELECT key FROM idempotency_keys`,
	// What it reads or writes, beyond what it needs.
	`UPDATE outbox SET attempts = 0`,
	`UPDATE outbox SET payload = ''`,
	`DELETE FROM outbox`,
	`INSERT INTO inbox (handler, message_id) VALUES ('h', gen_random_uuid())`,
	`DELETE FROM inbox`,
	`UPDATE inbox SET processed_at = now()`,
	`INSERT INTO dead_letters (handler, message_id, topic, payload, error, attempts) VALUES ('h', gen_random_uuid(), 't', '', 'e', 1)`,
	`UPDATE dead_letters SET payload = ''`,
	`INSERT INTO outbox_dead_letters SELECT * FROM outbox_dead_letters`,
	`UPDATE outbox_dead_letters SET last_error = ''`,
	`INSERT INTO relay_leader (lock_key, name, since, heartbeat_at) VALUES (1, 'x', now(), now())`,
	`UPDATE relay_leader SET heartbeat_at = now()`,
	`DELETE FROM relay_leader`,
	`INSERT INTO relay_slot (slot_name, snapshot) VALUES ('x', pg_current_snapshot())`,
	`UPDATE relay_slot SET drained_at = now()`,
	`DELETE FROM relay_slot`,
	`SELECT prune_inbox('1 day')`,
	`SELECT prune_idempotency_keys('1 day')`,
	// The schema and the migrations' bookkeeping.
	`TRUNCATE outbox, inbox, dead_letters, outbox_dead_letters`,
	`CREATE TABLE scratch (id int)`,
	`ALTER TABLE outbox ADD COLUMN scratch int`,
	`DROP TABLE dead_letters`,
	`CREATE INDEX scratch_idx ON outbox (message_id)`,
	`SELECT * FROM goose_db_version`,
	`SELECT * FROM outbox_goose_db_version`,
	`DROP PUBLICATION outbox_publication`,
	`CREATE PUBLICATION scratch_publication FOR TABLE outbox`,
	`GRANT pg_read_all_data TO CURRENT_USER`,
	`ALTER ROLE CURRENT_USER CREATEROLE`,
}

// TestConsoleRoleIsRefusedWhatItDoesNotNeed: every statement outside the
// console's job fails with "permission denied".
func TestConsoleRoleIsRefusedWhatItDoesNotNeed(t *testing.T) {
	t.Parallel()
	pool := pgtest.Connect(t, pgtest.LoginAs(t, pgtest.NewDatabase(t), consoleRole))
	for _, stmt := range refusedToConsole {
		t.Run(stmt, func(t *testing.T) {
			t.Parallel()
			pgtest.RequireRefused(t, pool, stmt)
		})
	}
}

// TestConsoleRoleDoesItsJob: what the console does, through the packages
// that own the tables, works as its role: read everything it shows,
// replay both kinds of dead letter (DELETE … RETURNING, INSERT into the
// outbox, pg_notify) and purge them.
func TestConsoleRoleDoesItsJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	owner := pgtest.Connect(t, dsn)
	pool := pgtest.Connect(t, pgtest.LoginAs(t, dsn, consoleRole))

	var ids []int64
	for range 3 {
		id, err := deadletter.Add(ctx, owner, deadletter.DeadLetter{Handler: "profile", MessageID: uuid.New(), Topic: "t", Error: "e", Attempts: 1})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for i := range 3 {
		_, err := owner.Exec(ctx, `
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts, next_attempt_at, last_error)
VALUES ($1, gen_random_uuid(), 't', 'k', '\x00', '{}', now(), pg_current_xact_id(), 5, now(), 'rejected')`, i+1)
		require.NoError(t, err)
	}

	for _, q := range []string{
		`SELECT count(*) FROM outbox`, `SELECT count(*) FROM inbox`, `SELECT count(*) FROM relay_leader`,
		`SELECT count(*) FROM relay_slot`, `SELECT count(*) FROM pg_replication_slots`,
		`SELECT pg_current_wal_lsn()`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	letters, err := deadletter.List(ctx, pool, deadletter.Filter{NewestFirst: true})
	require.NoError(t, err)
	require.Len(t, letters, 3)
	n, err := deadletter.Replay(ctx, pool, ids[0])
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = deadletter.Purge(ctx, pool, ids[1])
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = deadletter.PurgeMatching(ctx, pool, deadletter.Filter{Handler: "profile"})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	relayLetters, err := relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{NewestFirst: true})
	require.NoError(t, err)
	require.Len(t, relayLetters, 3)
	n, err = relay.Replay(ctx, pool, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = relay.PurgeDeadLetters(ctx, pool, 2)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = relay.PurgeMatchingDeadLetters(ctx, pool, relay.DeadLetterFilter{Key: "k"})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	var outboxRows int
	require.NoError(t, owner.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
	require.Equal(t, 2, outboxRows, "one replayed dead letter of each source is back in the outbox")
}
