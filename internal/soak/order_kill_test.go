package soak_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/outbox"
)

// The order test's shape: modest, since CI runs it beside the soak's other
// tests under the race detector.
const (
	orderTopic = "order.row"
	orderKeys  = 20 // keys, each written by a writer of its own
	// orderTxEvery paces each key's writer: orderKeys / orderTxEvery
	// transactions a second, 1 to orderMaxBatch messages each (about 300
	// messages a second in all).
	orderTxEvery  = 200 * time.Millisecond
	orderMaxBatch = 5
	orderKills    = 2
	// orderFlow is how many messages must arrive after each stream start
	// (the first, each takeover) before the test goes on, about two
	// seconds of load: the leader is killed with work in hand, and the new
	// one has published.
	orderFlow = 600
	// metadataSeq carries a message's number in its key's sequence, from 1.
	metadataSeq = "seq"
	// orderInHand is how many committed messages must be on their way
	// (not received yet) when a leader is killed: the writers commit in
	// bursts, one transaction per key each orderTxEvery, and the kill
	// lands in one, while the leader has rows in hand.
	orderInHand = 25
	// orderBurst is the size of the transaction each writer commits when
	// the test asks for a burst: when the relay keeps up with the steady
	// load so well that orderInHand messages are never on their way, 20
	// writers committing orderBurst messages each at once give it work in
	// hand for a while.
	orderBurst = 100
)

// TestWALKeyOrderAcrossKilledRelays runs three WAL-capturing relays against
// a cluster of its own and an embedded NATS while one writer per key
// commits transactions of one to five messages over 20 keys, each message
// numbered in its key's sequence ("seq" metadata), so that each key's commit
// order is known. Under that steady load it kills the leading relay with
// SIGKILL, twice, restarting it each time, once the new leader streams and
// publishes. Then it stops writing and requires: every committed message
// received; per key, the first delivery of each message in seq order with no
// gap (a message delivered again after a kill, which JetStream's Nats-Msg-Id
// dedupe may or may not drop, is counted, not failed); nothing received that
// was not committed; the outbox drained; one replication slot, taken over
// after each kill and never resynced after its creation.
func TestWALKeyOrderAcrossKilledRelays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := newCluster(t, walSettings...)
	dsn, pool := pg.createPool(t, "outboxd_order")
	natsURL := startNATS(t)
	seen := subscribe(t, natsURL, orderTopic)

	var relays []*process
	for i := range 3 {
		relays = append(relays, startProcess(t, fmt.Sprintf("relay-%d", i), []string{
			"DATABASE_URL=" + dsn, "BROKER=nats", "BROKER_URL=" + natsURL, "LOG_FORMAT=text",
			"RELAY_CAPTURE=wal", "ADMIN_ADDR=127.0.0.1:0",
		}, "relay"))
	}
	const streaming = "relay: streaming the WAL"
	waitFor(t, 60*time.Second, "a relay streams the WAL", func() bool {
		return countLogs(relays, streaming) > 0
	})

	start := time.Now()
	w := startKeyedWriters(t, dsn)
	status := func() string {
		return fmt.Sprintf("%d stream starts, %d messages received, %d committed", countLogs(relays, streaming), seen.count(), w.committed())
	}
	// flowing waits for the stream starts to reach streams, then for
	// orderFlow more messages to arrive.
	flowing := func(what string, streams int) {
		t.Helper()
		began := time.Now()
		waitFor(t, 30*time.Second, what+": a relay streams", func() bool {
			return countLogs(relays, streaming) >= streams
		}, status)
		streamed := time.Since(began)
		floor := seen.count()
		waitFor(t, 30*time.Second, what+": messages flow", func() bool {
			return seen.count() >= floor+orderFlow
		}, status)
		t.Logf("%s: streaming after %s, %d more messages after %s", what, streamed.Round(time.Millisecond), orderFlow, time.Since(began).Round(time.Millisecond))
	}
	flowing("the first leader", 1)
	for kill := 1; kill <= orderKills; kill++ {
		var (
			leading *process
			err     error
		)
		waitFor(t, 15*time.Second, "relay_leader names a running relay", func() bool {
			leading, err = liveLeader(pool, relays)
			return leading != nil
		}, func() string { return fmt.Sprint(err) })
		streams := countLogs(relays, streaming)
		committed, received := w.inHand(t, seen)
		t.Logf("kill %d at %s: SIGKILL to the leader, %s (pid %d), %d messages committed, %d received",
			kill, time.Since(start).Round(time.Millisecond), leading.name, leading.pid(), committed, received)
		leading.restart(t)
		flowing(fmt.Sprintf("takeover %d", kill), streams+1)
	}
	w.stop()
	written := w.all()
	t.Logf("writing stopped at %s: %d messages in %d transactions over %d keys",
		time.Since(start).Round(time.Millisecond), w.committed(), w.transactions(), orderKeys)
	require.NoError(t, w.err(), "every writer transaction commits (the database is never disturbed)")

	var ids []uuid.UUID
	for _, key := range written {
		ids = append(ids, key...)
	}
	var outboxLeft int
	waitFor(t, 60*time.Second, "every committed message is received and the outbox drains", func() bool {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxLeft))
		return outboxLeft == 0 && len(seen.missing(ids)) == 0
	}, func() string {
		return fmt.Sprintf("outbox=%d, %d of %d committed messages not received", outboxLeft, len(seen.missing(ids)), len(ids))
	})

	// Per key, first deliveries come in commit order (seq 1, 2, ...) with
	// no gap; a delivery of a message already delivered is a re-send.
	bySeq := map[string]map[int]uuid.UUID{} // key → seq → message id
	for key, keyIDs := range written {
		bySeq[key] = map[int]uuid.UUID{}
		for i, id := range keyIDs {
			bySeq[key][i+1] = id
		}
	}
	next := map[string]int{}
	first := map[uuid.UUID]bool{}
	resent := 0
	deliveries := seen.received()
	for i, d := range deliveries {
		key := d.metadata[outbox.MetadataKey]
		seq, err := strconv.Atoi(d.metadata[metadataSeq])
		require.NoError(t, err, "delivery %d (message %s): seq metadata", i, d.id)
		want, ok := bySeq[key][seq]
		require.True(t, ok, "delivery %d: message %s (key %q, seq %d) was never committed", i, d.id, key, seq)
		require.Equal(t, want, d.id, "delivery %d: key %q seq %d is another message than the one committed", i, key, seq)
		if first[d.id] {
			resent++
			continue
		}
		first[d.id] = true
		next[key]++
		require.Equal(t, next[key], seq, "delivery %d: key %q's first deliveries go in commit order with no gap: seq %d after seq %d", i, key, seq, next[key]-1)
	}
	for key, keyIDs := range written {
		require.Equal(t, len(keyIDs), next[key], "key %q: every committed message delivered", key)
	}

	for _, r := range relays {
		dead, err := r.exited()
		require.False(t, dead, "%s exited by itself: %v", r.name, err)
	}
	checkCapture(t, pool, soakMode{name: "wal"}, relays, orderKills)
	t.Logf("%d messages over %d keys delivered in per-key commit order across %d leader kills; %d deliveries in all, %d re-sends of a message already delivered (not dropped by JetStream's dedupe window); took %s",
		len(ids), len(written), orderKills, len(deliveries), resent, time.Since(start).Round(time.Millisecond))
}

// keyedWriters commit outbox messages without NOTIFY: one goroutine per
// key on a connection of its own, one transaction every orderTxEvery of 1
// to orderMaxBatch messages numbered in the key's sequence, so that a key's
// commit order is its seq order. The database is never disturbed, so a
// failed transaction stops its writer and fails the test.
type keyedWriters struct {
	stopping chan struct{}
	wg       sync.WaitGroup
	// bursts counts the bursts asked for; a writer that sees it grow
	// commits orderBurst messages in its next transaction.
	bursts atomic.Int64

	mu   sync.Mutex
	ids  map[string][]uuid.UUID // key → its committed message ids, by seq
	txs  int
	errs []error
}

func startKeyedWriters(t *testing.T, dsn string) *keyedWriters {
	t.Helper()
	w := &keyedWriters{stopping: make(chan struct{}), ids: map[string][]uuid.UUID{}}
	t.Cleanup(w.stop)
	for k := range orderKeys {
		key := fmt.Sprintf("key-%02d", k)
		conn, err := pgx.Connect(context.Background(), dsn)
		require.NoError(t, err)
		w.wg.Go(func() {
			defer conn.Close(context.Background())
			if err := w.write(conn, key); err != nil {
				w.mu.Lock()
				w.errs = append(w.errs, fmt.Errorf("writer of %s: %w", key, err))
				w.mu.Unlock()
			}
		})
	}
	return w
}

func (w *keyedWriters) write(conn *pgx.Conn, key string) error {
	tick := time.NewTicker(orderTxEvery)
	defer tick.Stop()
	seq := 0
	var bursts int64
	for {
		select {
		case <-w.stopping:
			return nil
		case <-tick.C:
		}
		size := 1 + rand.IntN(orderMaxBatch)
		if b := w.bursts.Load(); b != bursts {
			bursts, size = b, orderBurst
		}
		msgs := make([]outbox.Message, size)
		for i := range msgs {
			n := strconv.Itoa(seq + 1 + i)
			msgs[i] = outbox.Message{
				ID:       uuid.Must(uuid.NewV7()),
				Topic:    orderTopic,
				Key:      key,
				Payload:  []byte(`{"seq":` + n + `}`),
				Metadata: map[string]string{metadataSeq: n},
			}
		}
		// Not cancelled by stop: a transaction in hand commits or fails,
		// never ends in doubt.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return outbox.Writer{WithoutNotify: true}.EnqueueTx(ctx, tx, msgs...)
		})
		cancel()
		if err != nil {
			return err
		}
		seq += len(msgs)
		w.mu.Lock()
		for _, m := range msgs {
			w.ids[key] = append(w.ids[key], m.ID)
		}
		w.txs++
		w.mu.Unlock()
	}
}

// inHand waits until at least orderInHand committed messages are not
// received yet, polling every millisecond since a burst is gone in tens of
// milliseconds, and returns the counts it saw. When the steady load gives
// no such moment within a second, it asks the writers for a burst, and
// again each second after that.
func (w *keyedWriters) inHand(t *testing.T, seen *seenSet) (committed, received int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	burst := time.NewTicker(time.Second)
	defer burst.Stop()
	deadline := time.After(20 * time.Second)
	for {
		committed, received = w.committed(), seen.count()
		if committed-received >= orderInHand {
			return committed, received
		}
		select {
		case <-tick.C:
		case <-burst.C:
			w.bursts.Add(1)
		case <-deadline:
			t.Fatalf("never %d committed messages on their way within 20s, bursts of %d messages per writer included (%d asked for): %d committed, %d received",
				orderInHand, orderBurst, w.bursts.Load(), committed, received)
		}
	}
}

// stop stops writing and waits for the transactions in hand.
func (w *keyedWriters) stop() {
	select {
	case <-w.stopping:
	default:
		close(w.stopping)
	}
	w.wg.Wait()
}

func (w *keyedWriters) committed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ids := range w.ids {
		n += len(ids)
	}
	return n
}

func (w *keyedWriters) transactions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.txs
}

// all returns each key's committed message ids, in seq order.
func (w *keyedWriters) all() map[string][]uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]uuid.UUID, len(w.ids))
	for key, ids := range w.ids {
		out[key] = append([]uuid.UUID(nil), ids...)
	}
	return out
}

func (w *keyedWriters) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.errs...)
}
