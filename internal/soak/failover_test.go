package soak_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/outbox"
)

// failoverTopic is the topic of the failover test's messages.
const failoverTopic = "failover.row"

// TestFailoverToAPromotedStandby runs two WAL-capturing relays on a
// multi-host DATABASE_URL (primary, then standby, read-write sessions only)
// while a writer commits outbox rows, crashes the primary mid-load and
// promotes its streaming standby. PostgreSQL 15 keeps no replication slot on
// a standby, so the relay that leads on the promoted server finds its slot
// missing, creates one and publishes what the table holds before it streams
// (the resync): every row on the new primary is published and the outbox
// drains.
//
// The relays are frozen (SIGSTOP) from just after the crash until the
// writer has committed rows on the promoted server: no relay can have
// reached it before those rows commit, so only the resync can publish them.
//
// Replication is asynchronous: rows that committed on the old primary but
// had not reached the standby die with it. That is the database's loss, not
// the relay's, and the test only counts them; so are messages the old
// leader published from such rows (the broker has them, no table does).
func TestFailoverToAPromotedStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := newCluster(t, walSettings...)
	standby := newStandby(t, primary)
	primaryDSN := primary.createMigrated(t, "outbox")
	// written remembers, in the writer's transaction, every row it commits:
	// the relay deletes outbox rows once published, so this is how the test
	// knows which rows survived the failover.
	setup, err := pgx.Connect(ctx, primaryDSN)
	require.NoError(t, err)
	_, err = setup.Exec(ctx, `CREATE TABLE failover_written (message_id uuid PRIMARY KEY)`)
	require.NoError(t, err)
	var migratedLSN string
	require.NoError(t, setup.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&migratedLSN))
	require.NoError(t, setup.Close(ctx))
	waitReplayed(t, standby, migratedLSN)

	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/outbox?sslmode=disable&target_session_attrs=read-write",
		primary.port, standby.port)

	natsURL := startNATS(t)
	seen := subscribe(t, natsURL, failoverTopic)

	var relays []*process
	var admins []string
	for i := range 2 {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		admins = append(admins, admin)
		relays = append(relays, startProcess(t, fmt.Sprintf("relay-%d", i), []string{
			"DATABASE_URL=" + dsn, "BROKER=nats", "BROKER_URL=" + natsURL, "LOG_FORMAT=text",
			"RELAY_CAPTURE=wal", "ADMIN_ADDR=" + admin,
		}, "relay"))
	}
	waitFor(t, 60*time.Second, "a relay streams the WAL", func() bool {
		return countLogs(relays, "relay: streaming the WAL") > 0
	})

	w := startWriter(t, dsn)
	waitFor(t, 30*time.Second, "the relays publish from the primary's slot", func() bool {
		return w.committed() >= 200 && seen.count() >= 100
	})
	resyncsBefore := resyncs(t, admins)
	slotsBefore := countLogs(relays, "new replication slot")

	crashedAt := time.Now()
	primary.crash(t)
	for _, r := range relays {
		r.freeze(t)
	}
	standby.promote(t)
	promotedAt := time.Now()
	t.Logf("primary crashed; standby promoted %s later", promotedAt.Sub(crashedAt).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the writer commits on the promoted standby", func() bool {
		return len(w.since(promotedAt)) >= 50
	})
	unreached := w.since(promotedAt) // committed before any relay reached the new primary
	for _, r := range relays {
		r.thaw(t)
	}
	waitFor(t, 60*time.Second, "a relay resyncs on the promoted standby", func() bool {
		return resyncs(t, admins) > resyncsBefore
	})
	n := len(w.since(promotedAt))
	waitFor(t, 30*time.Second, "the writer commits more rows on the new primary", func() bool {
		return len(w.since(promotedAt)) >= n+100
	})
	w.stop()
	after := w.since(promotedAt)

	newPrimary, err := pgxpool.New(ctx, standby.url("outbox"))
	require.NoError(t, err)
	t.Cleanup(newPrimary.Close)
	var survived []uuid.UUID
	var outboxLeft int
	waitFor(t, 90*time.Second, "every row on the new primary is published and the outbox is empty", func() bool {
		survived = nil
		rows, err := newPrimary.Query(ctx, `SELECT message_id FROM failover_written`)
		require.NoError(t, err)
		survived, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		require.NoError(t, newPrimary.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxLeft))
		return outboxLeft == 0 && len(seen.missing(survived)) == 0
	}, func() string {
		return fmt.Sprintf("outbox=%d, unpublished rows of the new primary: %d of %d", outboxLeft, len(seen.missing(survived)), len(survived))
	})

	onNewPrimary := map[uuid.UUID]bool{}
	for _, id := range survived {
		onNewPrimary[id] = true
	}
	for _, id := range after {
		require.True(t, onNewPrimary[id], "row %s committed after the promotion is not on the new primary", id)
	}
	require.Empty(t, seen.missing(unreached), "rows committed before any relay reached the new primary are published (the resync)")
	require.Empty(t, seen.missing(after), "every row committed after the promotion is published")
	require.Greater(t, countLogs(relays, "new replication slot"), slotsBefore, "the relay logs that it started on a new slot")
	for _, r := range relays {
		dead, err := r.exited()
		require.False(t, dead, "%s exited by itself: %v", r.name, err)
	}

	lost, phantoms := 0, 0
	for _, id := range w.all() {
		if !onNewPrimary[id] {
			lost++
		}
	}
	for _, id := range seen.all() {
		if !onNewPrimary[id] {
			phantoms++
		}
	}
	t.Logf("writer committed %d rows, %d after the promotion (%d before a relay reached the new primary); "+
		"%d rows on the new primary, all published; %d committed rows lost with the old primary and %d of their messages published before the crash (asynchronous replication)",
		len(w.all()), len(after), len(unreached), len(survived), lost, phantoms)
}

// waitReplayed waits until standby has replayed the WAL up to lsn.
func waitReplayed(t *testing.T, standby *cluster, lsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, standby.adminURL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	waitFor(t, 60*time.Second, "the standby replays the migrations", func() bool {
		var done bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done))
		return done
	})
}

// writer commits one outbox row per transaction, 100 a second, on a pool
// of the multi-host DSN, and remembers which commits succeeded and when
// each transaction began. Failed transactions (the primary gone, the
// standby not yet promoted) are not retried: the next tick writes a new row.
type writer struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	rows []writtenRow
}

type writtenRow struct {
	id    uuid.UUID
	began time.Time
}

func startWriter(t *testing.T, dsn string) *writer {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer pool.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			row := writtenRow{id: uuid.Must(uuid.NewV7()), began: time.Now()}
			if w.write(ctx, pool, row, i) == nil {
				w.mu.Lock()
				w.rows = append(w.rows, row)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writer) write(ctx context.Context, pool *pgxpool.Pool, row writtenRow, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		err := outbox.Writer{WithoutNotify: true}.EnqueueTx(ctx, tx, outbox.Message{
			ID:      row.id,
			Topic:   failoverTopic,
			Key:     "key-" + strconv.Itoa(i%8),
			Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`),
		})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO failover_written (message_id) VALUES ($1)`, row.id)
		return err
	})
}

// stop stops writing and waits for the transaction in hand.
func (w *writer) stop() {
	w.cancel()
	<-w.done
}

func (w *writer) committed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.rows)
}

// since returns the rows committed by transactions that began after t.
func (w *writer) since(t time.Time) []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []uuid.UUID
	for _, r := range w.rows {
		if r.began.After(t) {
			ids = append(ids, r.id)
		}
	}
	return ids
}

func (w *writer) all() []uuid.UUID { return w.since(time.Time{}) }

// seenSet is the message ids a subscriber received, and every delivery in
// the order it came.
type seenSet struct {
	mu         sync.Mutex
	ids        map[uuid.UUID]bool
	deliveries []delivery
}

// delivery is one message as the subscriber received it: a message sent
// again is delivered again.
type delivery struct {
	id       uuid.UUID
	metadata map[string]string
}

// subscribe consumes topic in a group of its own, one message at a time
// (so in the stream's order), acking every message, until t ends.
func subscribe(t *testing.T, natsURL, topic string) *seenSet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testlog.Buffer{}
	sub, err := broker.NewSubscriber(ctx, broker.Config{
		Kind: broker.KindNATS, URL: natsURL, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, "soak")
	require.NoError(t, err)
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	s := &seenSet{ids: map[uuid.UUID]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			id, err := uuid.Parse(m.UUID)
			if err == nil {
				s.mu.Lock()
				s.ids[id] = true
				s.deliveries = append(s.deliveries, delivery{id: id, metadata: m.Metadata})
				s.mu.Unlock()
			}
			m.Ack()
		}
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, sub.Close())
		<-done
		if t.Failed() {
			t.Logf("subscriber logs:\n%s", logs.String())
		}
	})
	return s
}

func (s *seenSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// missing returns the ids of want that were not received.
func (s *seenSet) missing(want []uuid.UUID) []uuid.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uuid.UUID
	for _, id := range want {
		if !s.ids[id] {
			out = append(out, id)
		}
	}
	return out
}

// received returns every delivery so far, in the order they came.
func (s *seenSet) received() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.deliveries...)
}

func (s *seenSet) all() []uuid.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uuid.UUID, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	return out
}

// resyncs sums outboxd_relay_capture_resyncs_total, every reason, over
// the relays' /metrics.
func resyncs(t *testing.T, admins []string) float64 {
	t.Helper()
	var sum float64
	for _, addr := range admins {
		resp, err := http.Get((&url.URL{Scheme: "http", Host: addr, Path: "/metrics"}).String())
		require.NoError(t, err)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "outboxd_relay_capture_resyncs_total") {
				continue
			}
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			require.NoError(t, err, "metric line %q", line)
			sum += v
		}
		require.NoError(t, sc.Err())
		require.NoError(t, resp.Body.Close())
	}
	return sum
}

// countLogs counts the log lines of the processes that contain substr.
func countLogs(ps []*process, substr string) int {
	n := 0
	for _, p := range ps {
		n += strings.Count(p.logs.String(), substr)
	}
	return n
}

// waitFor polls cond every 50 ms until it holds, and fails the test after
// timeout, with status, when given, saying where things stand.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, status ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s: not within %s", what, timeout)
			for _, s := range status {
				msg += ": " + s()
			}
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
