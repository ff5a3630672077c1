package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// exampleDSN is a migrated database for the examples.
var exampleDSN string

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithDatabase(&exampleDSN))
}

// testTopic is the topic of the tests' messages.
const testTopic = "relay.test"

// testLogger writes the relay's logs to stderr when RELAY_TEST_LOG is set;
// otherwise a test keeps them and prints them only if t fails, so that a
// failure in CI says what the relay did.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler) // a benchmark's log would only grow
	}
	var buf testlog.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the relay's log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// delivery is one message as the subscriber received it.
type delivery struct {
	id  string
	key string
	seq int
	msg *message.Message
}

// sink is a real Watermill gochannel Pub/Sub with a subscriber that records
// every delivery in arrival order. Publish blocks until the subscriber has
// recorded the message, so arrival order is publish order. fail, when set,
// can refuse a message before it reaches the channel (a broker fault).
type sink struct {
	ch *gochannel.GoChannel

	mu         sync.Mutex
	deliveries []delivery
	fail       func(*message.Message) error
	changed    chan struct{}
}

var _ message.Publisher = (*sink)(nil)

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{
		ch:      gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, nil),
		changed: make(chan struct{}, 1),
	}
	msgs, err := s.ch.Subscribe(context.Background(), testTopic)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range msgs {
			seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
			s.mu.Lock()
			s.deliveries = append(s.deliveries, delivery{
				id: msg.UUID, key: msg.Metadata.Get(outbox.MetadataKey), seq: seq, msg: msg,
			})
			s.mu.Unlock()
			msg.Ack()
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, s.ch.Close())
		<-done
	})
	return s
}

func (s *sink) Publish(topic string, msgs ...*message.Message) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		for _, m := range msgs {
			if err := fail(m); err != nil {
				return err
			}
		}
	}
	return s.ch.Publish(topic, msgs...)
}

func (s *sink) Close() error { return nil }

// setFail installs (or, with nil, removes) a fault.
func (s *sink) setFail(f func(*message.Message) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *sink) all() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.deliveries...)
}

// distinct counts the distinct message ids delivered.
func (s *sink) distinct() int {
	seen := map[string]bool{}
	for _, d := range s.all() {
		seen[d.id] = true
	}
	return len(seen)
}

func (s *sink) has(id uuid.UUID) bool {
	for _, d := range s.all() {
		if d.id == id.String() {
			return true
		}
	}
	return false
}

// waitDistinct waits until n distinct messages were delivered.
func (s *sink) waitDistinct(t testing.TB, n int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return s.distinct() >= n }, within, 5*time.Millisecond,
		"want %d distinct messages", n)
}

// requireKeyOrder checks that, per key, the first delivery of each message
// comes in seq order with no gap: re-sends of a message already delivered
// are allowed, reordering is not.
func requireKeyOrder(t testing.TB, ds []delivery) {
	t.Helper()
	seen := map[string]bool{}
	next := map[string]int{}
	for _, d := range ds {
		if seen[d.id] {
			continue
		}
		seen[d.id] = true
		want := next[d.key] + 1
		require.Equal(t, want, d.seq, "key %q: first deliveries out of order", d.key)
		next[d.key] = want
	}
}

// msgSeq is a message of key whose seq-th place in its key is recorded in
// the metadata.
func msgSeq(key string, seq int) outbox.Message {
	return outbox.Message{
		ID:       uuid.New(),
		Topic:    testTopic,
		Key:      key,
		Payload:  []byte(fmt.Sprintf(`{"key":%q,"seq":%d}`, key, seq)),
		Metadata: map[string]string{"seq": strconv.Itoa(seq)},
	}
}

// enqueue commits msgs in one transaction.
func enqueue(t testing.TB, pool *pgxpool.Pool, msgs ...outbox.Message) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return outbox.EnqueueTx(ctx, tx, msgs...) })
	require.NoError(t, err)
}

// keyedWriter hands out messages for keys in per-key seq order.
type keyedWriter struct {
	mu  sync.Mutex
	seq map[string]int
	ids []uuid.UUID
}

func (w *keyedWriter) next(key string) outbox.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seq == nil {
		w.seq = map[string]int{}
	}
	w.seq[key]++
	m := msgSeq(key, w.seq[key])
	w.ids = append(w.ids, m.ID)
	return m
}

func (w *keyedWriter) written() []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uuid.UUID(nil), w.ids...)
}

// running is a relay whose Run goroutine the test controls.
type running struct {
	*relay.Relay
	cancel context.CancelFunc
	done   chan error
}

// start runs r until stop or the end of the test.
func start(t testing.TB, r *relay.Relay) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{Relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop cancels Run and waits for it to return nil.
func (rr *running) stop(t testing.TB) {
	t.Helper()
	rr.cancel()
	select {
	case err, ok := <-rr.done:
		if ok {
			require.NoError(t, err)
			close(rr.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancellation")
	}
}

// newRelay builds a relay over pool and pub with quick test defaults.
func newRelay(t testing.TB, pool *pgxpool.Pool, pub message.Publisher, cfg relay.Config) *relay.Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.RetryBackoffMin == 0 {
		cfg.RetryBackoffMin = 10 * time.Millisecond
	}
	if cfg.RetryBackoffMax == 0 {
		cfg.RetryBackoffMax = 200 * time.Millisecond
	}
	if cfg.WALStatusInterval == 0 {
		cfg.WALStatusInterval = 200 * time.Millisecond
	}
	if cfg.Capture == relay.CaptureWAL {
		requireLogicalWAL(t, pool)
	}
	r, err := relay.New(pool, pub, cfg)
	require.NoError(t, err)
	return r
}

// countRows runs a count query.
func countRows(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// lockHolder is the backend pid holding the leader lock, or 0.
func lockHolder(t testing.TB, pool *pgxpool.Pool, key int64) int {
	t.Helper()
	var pid int
	err := pool.QueryRow(context.Background(), `
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND (classid::bigint << 32 | objid::bigint) = $1`, key).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(t, err)
	return pid
}

// terminate kills a backend as a crash or a network cut would.
func terminate(t testing.TB, pool *pgxpool.Pool, pid int) {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
	require.True(t, ok, "terminate backend %d", pid)
}

// requireLogicalWAL fails a WAL capture test at once, saying what to change,
// on a server without logical decoding: such a test never skips.
func requireLogicalWAL(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	var level string
	require.NoError(t, pool.QueryRow(context.Background(), `SHOW wal_level`).Scan(&level))
	if level != "logical" {
		t.Fatalf("WAL capture tests need wal_level = logical, the server has %s: ALTER SYSTEM SET wal_level = logical and restart PostgreSQL (.ci/run does)", level)
	}
}
