package e2e_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/outbox/inbox"
	"github.com/outboxd/outboxd/relay"
)

// The roles migration 00010 created on the test server, named as it named
// them: from the same variables, with the same defaults.
var (
	apiRole    = cmp.Or(os.Getenv("OUTBOXD_API_ROLE"), "outboxd_api")
	relayRole  = cmp.Or(os.Getenv("OUTBOXD_RELAY_ROLE"), "outboxd_relay")
	workerRole = cmp.Or(os.Getenv("OUTBOXD_WORKER_ROLE"), "outboxd_worker")
)

// sqlstateInsufficientPrivilege is PostgreSQL's "permission denied".
const sqlstateInsufficientPrivilege = "42501"

// loginAs creates a login role for t alone, member of group and nothing
// else, the way a deployment gives a process one of the NOLOGIN roles, and
// returns dsn logging in as it. Its password is random: the test server may
// trust loopback connections, but one that checks passwords works too.
//
// attributes are role attributes the login role gets itself, as a
// deployment must give them (REPLICATION, on PostgreSQL 15, is not inherited
// through membership); they are written into the statement as they are.
func loginAs(t *testing.T, dsn, group string, attributes ...string) string {
	t.Helper()
	ctx := context.Background()
	name := randomName("outboxd_test_login_")
	password := randomHex(16)
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	// Roles take no bind parameters; both strings are hex made here.
	_, err = admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s IN ROLE %s",
		pgx.Identifier{name}.Sanitize(), password, strings.Join(attributes, " "), pgx.Identifier{group}.Sanitize()))
	require.NoError(t, err)
	t.Cleanup(func() {
		admin, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		require.NoError(t, err)
		defer admin.Close(context.Background())
		_, err = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.UserPassword(name, password)
	return u.String()
}

// waitFor polls cond until it holds, and fails the test with describe's
// account of the last state when it does not within timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// requireRefused runs stmt in a transaction that is always rolled back and
// requires PostgreSQL to refuse it for lack of privilege.
func requireRefused(t *testing.T, pool *pgxpool.Pool, stmt string) {
	t.Helper()
	errRan := errors.New("the statement ran")
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), stmt); err != nil {
			return err
		}
		return errRan // roll back what it did
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "%s must be refused", stmt)
	require.Equal(t, sqlstateInsufficientPrivilege, pgErr.Code, "%s: %s", stmt, pgErr.Message)
}

// rejectingPublisher rejects every message of one topic for good, so that
// the relay records failures and dead-letters.
type rejectingPublisher struct {
	message.Publisher
	topic string
}

var errRejected = errors.New("rejected for good by the test broker")

func (p rejectingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == p.topic {
		return errRejected
	}
	return p.Publisher.Publish(topic, msgs...)
}

// TestPipelineRunsUnderItsLeastPrivilegeRoles runs the API, the relay and
// the worker each logged in as a member of its role only, through every
// statement they make: signup with an Idempotency-Key and its replay, a 409,
// GET of the user; the relay claiming (or streaming), marking (with a
// retention), purging, counting a broker's rejection and dead-lettering it,
// heartbeating as leader; the worker's inbox, profile, audit record and dead
// letter. Any missing grant would show as a failure here or as a
// "permission denied" in the logs, which are checked to hold none.
//
// One body, both capture modes. In wal, as compose runs it, the relay's
// login role has REPLICATION of its own (a group role's is not inherited),
// streams its slot as that role, and the API writes without pg_notify.
// REPLICATION lets a role decode every change of the database with any
// output plugin (test_decoding on users would show the password hashes):
// the relay only ever streams its publication, but the attribute allows
// more, and operators who cannot accept that run RELAY_CAPTURE=poll.
// TestRelayRoleWithReplicationIsRefusedTheSame shows it grants nothing else
// of the database.
func TestPipelineRunsUnderItsLeastPrivilegeRoles(t *testing.T) {
	t.Parallel()
	for _, capture := range []relay.Capture{relay.CapturePoll, relay.CaptureWAL} {
		t.Run("capture="+string(capture), func(t *testing.T) {
			t.Parallel()
			testPipelineUnderLeastPrivilege(t, capture)
		})
	}
}

func testPipelineUnderLeastPrivilege(t *testing.T, capture relay.Capture) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := pgtest.NewDatabase(t)
	owner := pgtest.Connect(t, dsn)
	var relayAttributes []string
	if capture == relay.CaptureWAL {
		relayAttributes = []string{"REPLICATION"}
	}
	relayDSN := loginAs(t, dsn, relayRole, relayAttributes...)
	apiPool := pgtest.Connect(t, loginAs(t, dsn, apiRole))
	relayPool := pgtest.Connect(t, relayDSN)
	workerPool := pgtest.Connect(t, loginAs(t, dsn, workerRole))
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer pubsub.Close()
	const rejectedTopic = "rejected.by.broker"
	r, err := relay.New(relayPool, rejectingPublisher{Publisher: pubsub, topic: rejectedTopic}, relay.Config{
		Capture:         capture,
		Retention:       1500 * time.Millisecond,
		MaxAttempts:     1,
		IsPermanent:     func(err error) bool { return errors.Is(err, errRejected) },
		MetricsInterval: 50 * time.Millisecond,
		Logger:          logger,
	})
	require.NoError(t, err)
	w, err := worker.New(workerPool, func(context.Context, string) (message.Subscriber, error) { return pubsub, nil },
		mail.LogMailer{Logger: logger}, worker.Config{Logger: logger})
	require.NoError(t, err)
	stop := runInBackground(ctx, r.Run, w.Run)
	defer func() {
		cancel()
		require.NoError(t, stop())
	}()

	srv, err := api.New(apiPool, api.Config{Argon2: signup.MinimalParams, SignupRateLimit: new(0),
		Wake:     wakeFor(capture),
		Registry: prometheus.NewRegistry(), Logger: logger})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	post := func(body string, header map[string]string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/signup", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	const body = `{"email":"least@example.com","name":"Least Privilege","password":"correct horse"}`
	key := map[string]string{"Idempotency-Key": "roles-1"}
	first := post(body, key)
	require.Equal(t, http.StatusCreated, first.StatusCode)
	replay := post(body, key)
	require.Equal(t, http.StatusCreated, replay.StatusCode)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, http.StatusConflict, post(`{"email":"LEAST@example.com","name":"Again","password":"correct horse"}`, nil).StatusCode)
	location := first.Header.Get("Location")
	get, err := ts.Client().Get(ts.URL + location)
	require.NoError(t, err)
	get.Body.Close()
	require.Equal(t, http.StatusOK, get.StatusCode)
	userID := strings.TrimPrefix(location, "/v1/users/")

	// A message the broker rejects for good, and one no handler can decode.
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx,
		outbox.Message{Topic: rejectedTopic, Key: "k", Payload: []byte(`{}`)},
		outbox.Message{Topic: event.TopicUserCreated, Key: "poison", Payload: []byte(`not json`)},
	))
	require.NoError(t, tx.Commit(ctx))

	var state string
	waitFor(t, 30*time.Second, func() bool {
		var outboxRows, deadOutbox, profiles, audits, inboxRows, deadLetters, leaders int
		require.NoError(t, owner.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM outbox),
			(SELECT count(*) FROM outbox_dead_letters),
			(SELECT count(*) FROM profiles WHERE user_id = $1),
			(SELECT count(*) FROM audit_log WHERE subject = $1::text),
			(SELECT count(*) FROM inbox),
			(SELECT count(*) FROM dead_letters),
			(SELECT count(*) FROM relay_leader)`, userID).
			Scan(&outboxRows, &deadOutbox, &profiles, &audits, &inboxRows, &deadLetters, &leaders))
		state = fmt.Sprintf("outbox=%d outbox_dead_letters=%d profiles=%d audit_log=%d inbox=%d dead_letters=%d relay_leader=%d",
			outboxRows, deadOutbox, profiles, audits, inboxRows, deadLetters, leaders)
		// Published rows are kept for the retention, then purged.
		return outboxRows == 0 && deadOutbox == 1 && profiles == 1 && audits == 1 && inboxRows == 3 &&
			deadLetters == len(worker.AllHandlers) && leaders == 1
	}, func() string { return state + "\nlogs:\n" + logs.String() })
	require.Equal(t, capture, r.Capture(), "the relay runs the capture it was asked for")
	if capture == relay.CaptureWAL {
		// The slot is streamed by the relay's login role itself.
		u, err := url.Parse(relayDSN)
		require.NoError(t, err)
		slot := relay.SlotName(relayPool.Config().ConnConfig.Database) // the default
		var walsenders int
		require.NoError(t, owner.QueryRow(ctx, `
SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1 AND r.usename = $2`, slot, u.User.Username()).Scan(&walsenders))
		require.Equal(t, 1, walsenders, "one walsender of %s streams slot %s", u.User.Username(), slot)
	}

	// A message dead-lettered again by the same handler updates its row.
	_, err = deadletter.Add(ctx, workerPool, deadletter.DeadLetter{Handler: "email", MessageID: uuid.New(), Topic: "t", Error: "first", Attempts: 1})
	require.NoError(t, err)
	again := deadletter.DeadLetter{Handler: "email", MessageID: uuid.New(), Topic: "t", Error: "first", Attempts: 1}
	_, err = deadletter.Add(ctx, workerPool, again)
	require.NoError(t, err)
	again.Error = "second"
	_, err = deadletter.Add(ctx, workerPool, again)
	require.NoError(t, err)

	// Each prunes its own table through the migrations' functions.
	_, err = signup.PruneIdempotencyKeys(ctx, apiPool, 24*time.Hour)
	require.NoError(t, err)
	_, err = inbox.Prune(ctx, workerPool, 24*time.Hour)
	require.NoError(t, err)

	require.NotContains(t, logs.String(), "permission denied", "no component met a missing grant")
	require.NotContains(t, logs.String(), "SQLSTATE "+sqlstateInsufficientPrivilege)
}

// refusedToEveryRole are statements every role is refused: other
// components' tables, the schema, the publication, the migrations'
// bookkeeping, the other roles.
var refusedToEveryRole = []string{
	`CREATE TABLE scratch (id int)`,
	`SELECT * FROM goose_db_version`,
	`UPDATE audit_log SET actor = 'x'`,
	`DELETE FROM audit_log`,
	`TRUNCATE audit_log`,
	`SELECT password_hash FROM users`,
	`UPDATE users SET name = 'x'`,
	`DELETE FROM users`,
	`TRUNCATE users, outbox, profiles, inbox, dead_letters, outbox_dead_letters, relay_leader, idempotency_keys, relay_slot`,
	`ALTER TABLE outbox ADD COLUMN scratch int`,
	`ALTER TABLE outbox REPLICA IDENTITY FULL`,
	`DROP TABLE outbox`,
	`DROP PUBLICATION outbox_publication`,
	`ALTER PUBLICATION outbox_publication ADD TABLE users`,
	`ALTER PUBLICATION outbox_publication SET (publish = 'insert, update, delete')`,
	`CREATE PUBLICATION scratch_publication FOR TABLE users`,
	`CREATE PUBLICATION scratch_publication FOR ALL TABLES`,
	`GRANT ` + apiRole + `, ` + relayRole + `, ` + workerRole + ` TO CURRENT_USER`,
}

// refusedTo are, for each role, statements outside its job.
var refusedTo = map[string][]string{
	apiRole: {
		`SELECT * FROM users`, // includes password_hash
		`SELECT id FROM outbox`,
		`UPDATE outbox SET attempts = 0`,
		`DELETE FROM outbox`,
		`DELETE FROM idempotency_keys`,
		`UPDATE idempotency_keys SET request_hash = ''`,
		`SELECT prune_inbox('1 day')`,
		`SELECT user_id FROM profiles`,
		`INSERT INTO profiles (user_id, display_name) VALUES (gen_random_uuid(), 'x')`,
		`SELECT id FROM audit_log`,
		`INSERT INTO audit_log (event, actor, subject, occurred_at) VALUES ('e', 'a', 's', now())`,
		`INSERT INTO inbox (handler, message_id) VALUES ('h', gen_random_uuid())`,
		`SELECT id FROM dead_letters`,
		`SELECT id FROM outbox_dead_letters`,
		`SELECT name FROM relay_leader`,
		`SELECT slot_name FROM relay_slot`,
	},
	relayRole: {
		`INSERT INTO outbox (message_id, topic, payload) VALUES (gen_random_uuid(), 'invented', '{}')`,
		`UPDATE outbox SET payload = ''`,
		`UPDATE outbox SET topic = 'x', key = 'y'`,
		`SELECT id FROM users`,
		`SELECT email FROM users`,
		`INSERT INTO users (id, email, name, password_hash) VALUES (gen_random_uuid(), 'a@b.c', 'n', 'h')`,
		`SELECT key FROM idempotency_keys`,
		`UPDATE outbox_dead_letters SET last_error = ''`,
		`DELETE FROM outbox_dead_letters`,
		`DELETE FROM relay_leader`,
		`SELECT user_id FROM profiles`,
		`INSERT INTO audit_log (event, actor, subject, occurred_at) VALUES ('e', 'a', 's', now())`,
		`SELECT handler FROM inbox`,
		`SELECT id FROM dead_letters`,
		`SELECT prune_idempotency_keys('1 day')`,
		`SELECT prune_inbox('1 day')`,
	},
	workerRole: {
		`UPDATE profiles SET bio = 'x'`,
		`DELETE FROM profiles`,
		`SELECT * FROM users`,
		`INSERT INTO users (id, email, name, password_hash) VALUES (gen_random_uuid(), 'a@b.c', 'n', 'h')`,
		`SELECT id FROM audit_log`,
		`DELETE FROM inbox`,
		`UPDATE inbox SET processed_at = now()`,
		`DELETE FROM dead_letters`,
		`UPDATE dead_letters SET payload = ''`,
		`SELECT id FROM outbox`,
		`INSERT INTO outbox (message_id, topic, payload) VALUES (gen_random_uuid(), 'invented', '{}')`,
		`SELECT key FROM idempotency_keys`,
		`SELECT name FROM relay_leader`,
		`SELECT id FROM outbox_dead_letters`,
		`SELECT prune_idempotency_keys('1 day')`,
		`SELECT slot_name FROM relay_slot`,
	},
}

// requireRoleRefused requires pool, logged in as a member of role, to be
// refused every statement refusedTo and refusedToEveryRole list for role,
// each in a parallel subtest under name.
func requireRoleRefused(t *testing.T, name string, pool *pgxpool.Pool, role string) {
	t.Helper()
	for _, stmt := range slices.Concat(refusedTo[role], refusedToEveryRole) {
		t.Run(name+"/"+stmt, func(t *testing.T) {
			t.Parallel()
			requireRefused(t, pool, stmt)
		})
	}
}

// TestEachRoleIsRefusedWhatItDoesNotNeed proves the other half of least
// privilege: every statement outside a role's job fails with "permission
// denied". Each would succeed for the owner (they are valid statements on
// existing tables), so a grant too many makes its subtest fail.
func TestEachRoleIsRefusedWhatItDoesNotNeed(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	for _, role := range []string{apiRole, relayRole, workerRole} {
		requireRoleRefused(t, role, pgtest.Connect(t, loginAs(t, dsn, role)), role)
	}
}

// TestRelayRoleWithReplicationIsRefusedTheSame: the REPLICATION that WAL
// capture needs on the relay's login role gives it nothing else of the
// database. It is still refused everything the relay's role is refused
// without it: users (not even an email, nor a password hash), writing the
// outbox's messages, dropping or widening the publication, altering the
// outbox.
//
// What REPLICATION does give is a replication connection, and on it any
// slot with any output plugin: test_decoding over the database would show
// every change of every table, users' password hashes included. The relay's
// role only ever streams outbox_publication, but the attribute allows more,
// and no grant can narrow it; operators who cannot accept that run the relay
// with RELAY_CAPTURE=poll and no REPLICATION.
func TestRelayRoleWithReplicationIsRefusedTheSame(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, loginAs(t, dsn, relayRole, "REPLICATION"))
	var replication, groupReplication bool
	require.NoError(t, pool.QueryRow(context.Background(), `
SELECT (SELECT rolreplication FROM pg_roles WHERE rolname = current_user),
	(SELECT rolreplication FROM pg_roles WHERE rolname = $1)`, relayRole).Scan(&replication, &groupReplication))
	require.True(t, replication, "the login role has REPLICATION")
	require.False(t, groupReplication, "the migration's NOLOGIN role does not: only its login has it")
	requireRoleRefused(t, relayRole+" REPLICATION", pool, relayRole)
}

// TestNobodyChangesTheAuditLog: not the worker that writes it, not the other
// roles, not even the owner that created it (its trigger refuses).
func TestNobodyChangesTheAuditLog(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	owner := pgtest.Connect(t, dsn)
	_, err := owner.Exec(context.Background(),
		`INSERT INTO audit_log (event, actor, subject, occurred_at) VALUES ('user.created', 'signup', 's', now())`)
	require.NoError(t, err)
	pools := map[string]*pgxpool.Pool{
		"owner":    owner,
		apiRole:    pgtest.Connect(t, loginAs(t, dsn, apiRole)),
		relayRole:  pgtest.Connect(t, loginAs(t, dsn, relayRole)),
		workerRole: pgtest.Connect(t, loginAs(t, dsn, workerRole)),
	}
	for who, pool := range pools {
		for _, stmt := range []string{
			`UPDATE audit_log SET actor = 'rewritten'`,
			`DELETE FROM audit_log`,
			`TRUNCATE audit_log`,
		} {
			t.Run(who+"/"+stmt, func(t *testing.T) {
				t.Parallel()
				requireRefused(t, pool, stmt)
			})
		}
	}
	t.Cleanup(func() {
		var n int
		require.NoError(t, owner.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE actor = 'signup'`).Scan(&n))
		require.Equal(t, 1, n, "the record is intact")
	})
}

// TestRelayRoleSeesOtherRolesTransactions: the relay's horizon metric reads
// pg_stat_activity, which hides other roles' transactions from a role
// without pg_read_all_stats; the migration grants it, so a transaction the
// API holds open is seen.
func TestRelayRoleSeesOtherRolesTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	apiPool := pgtest.Connect(t, loginAs(t, dsn, apiRole))
	relayPool := pgtest.Connect(t, loginAs(t, dsn, relayRole))

	tx, err := apiPool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`) // take an xid, as a signup does
	require.NoError(t, err)
	var pid int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))

	var seen bool
	require.NoError(t, relayPool.QueryRow(ctx,
		`SELECT xact_start IS NOT NULL AND backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&seen))
	require.True(t, seen, "the relay role sees the API's open transaction")
}

// TestRoleNamesComeFromTheEnvironmentAndDownKeepsSharedRoles migrates two
// databases of one server at once with role names of its own (goose's
// ENVSUB reads them from the environment of a child outboxd), then rolls the
// roles migration back in one database: its grants go, the roles stay for
// the other. Rolling it back in the last database drops them.
func TestRoleNamesComeFromTheEnvironmentAndDownKeepsSharedRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := randomName("outboxd_test_r")
	env := map[string]string{
		"OUTBOXD_API_ROLE":    prefix + "_api",
		"OUTBOXD_RELAY_ROLE":  prefix + "_relay",
		"OUTBOXD_WORKER_ROLE": prefix + "_worker",
	}
	// Registered before the databases, so it runs after they are dropped
	// and nothing holds the roles any more.
	t.Cleanup(func() {
		admin, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		require.NoError(t, err)
		defer admin.Close(context.Background())
		for _, role := range env {
			_, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
			require.NoError(t, err)
		}
	})
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	roles := func() []string {
		rows, err := admin.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1 || '%' AND NOT rolcanlogin ORDER BY 1`, prefix)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	canInsertUsers := func(dsn string) bool {
		pool := pgtest.Connect(t, dsn)
		defer pool.Close()
		var ok bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT has_table_privilege($1, 'users', 'INSERT')`, env["OUTBOXD_API_ROLE"]).Scan(&ok))
		return ok
	}
	startMigrate := func(dsn string, args ...string) *outboxdProcess {
		e := map[string]string{"DATABASE_URL": dsn}
		for k, v := range env {
			e[k] = v
		}
		return startOutboxd(t, e, append([]string{"migrate"}, args...)...)
	}
	migrate := func(dsn string, args ...string) {
		p := startMigrate(dsn, args...)
		require.Equal(t, 0, p.wait(t, 60*time.Second), p.output.String())
	}
	// downPast rolls back until 00010 is no longer applied.
	downPast := func(dsn string) {
		pool := pgtest.Connect(t, dsn)
		defer pool.Close()
		for {
			var applied bool
			require.NoError(t, pool.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM goose_db_version WHERE version_id = 10 AND is_applied)`).Scan(&applied))
			if !applied {
				return
			}
			migrate(dsn, "down")
		}
	}

	// Both at once: each may find the roles missing and race to create them.
	one, two := pgtest.NewEmptyDatabase(t), pgtest.NewEmptyDatabase(t)
	first, second := startMigrate(one, "up"), startMigrate(two, "up")
	require.Equal(t, 0, first.wait(t, 60*time.Second), first.output.String())
	require.Equal(t, 0, second.wait(t, 60*time.Second), second.output.String())
	require.Equal(t, []string{prefix + "_api", prefix + "_relay", prefix + "_worker"}, roles(), "NOLOGIN roles named by the environment")
	require.True(t, canInsertUsers(one))
	require.True(t, canInsertUsers(two))

	downPast(one)
	require.Len(t, roles(), 3, "the other database still uses the roles")
	require.False(t, canInsertUsers(one), "this database's grants are gone")
	require.True(t, canInsertUsers(two), "the other database's grants are intact")

	downPast(two)
	require.Empty(t, roles(), "the last database's rollback drops the roles")

	migrate(one, "up")
	require.Len(t, roles(), 3, "up again recreates them")
	require.True(t, canInsertUsers(one))
}

// wakeFor is how the API wakes relays of capture: WAL capture needs no
// wake-up.
func wakeFor(capture relay.Capture) api.Wake {
	if capture == relay.CaptureWAL {
		return api.WakeNone
	}
	return api.WakeCoalesced
}
