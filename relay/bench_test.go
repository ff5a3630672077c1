package relay_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

var (
	drainRows   = flag.Int("relay.drain", 50_000, "rows pre-filled for each drain in BenchmarkRelayDrain*")
	latencyRate = flag.Int("relay.rate", 500, "messages per second in BenchmarkCommitToPublish")
	natsURL     = flag.String("relay.nats", "", "NATS server for BenchmarkRelayDrainNATS; empty runs one in the test")
)

// countingPublisher publishes nowhere and counts.
type countingPublisher struct{ n atomic.Int64 }

func (p *countingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.n.Add(int64(len(msgs)))
	return nil
}

func (p *countingPublisher) Close() error { return nil }

// fillOutbox inserts n rows shaped like user.created events over 1000 keys,
// on a freshly vacuumed table so that every drain starts alike.
func fillOutbox(b *testing.B, pool *pgxpool.Pool, n int, topic string) {
	b.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `
INSERT INTO outbox (message_id, topic, key, payload, metadata)
SELECT gen_random_uuid(), $2, 'user-' || (i % 1000),
	convert_to(format('{"user_id":"%s","email":"user%s@example.com","name":"User %s","created_at":"%s"}',
		gen_random_uuid(), i, i, now()), 'UTF8'),
	jsonb_build_object('correlation_id', gen_random_uuid()::text,
		'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
FROM generate_series(1, $1) AS i`, n, topic)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `ANALYZE outbox`)
	require.NoError(b, err)
}

// rawDrain is the ceiling: the least any correct relay does per batch,
// claim the same rows under the same horizon as the relay and delete them by
// id, with no publishing and no bookkeeping.
func rawDrain(b *testing.B, pool *pgxpool.Pool) int {
	b.Helper()
	ctx := context.Background()
	total := 0
	for {
		rows, err := pool.Query(ctx, `
SELECT id, message_id, topic, key, payload, metadata, created_at, attempts
FROM outbox
WHERE published_at IS NULL AND next_attempt_at <= now()
	AND xid < (
		SELECT coalesce(
			(SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
			 WHERE NOT EXISTS (
				SELECT 1 FROM pg_stat_activity a
				WHERE a.backend_xid = xid(x)
					AND a.datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
			 )),
			pg_snapshot_xmax(s.snap))
		FROM (SELECT pg_current_snapshot() AS snap) AS s
	)
ORDER BY id
LIMIT 500`)
		require.NoError(b, err)
		var ids []int64
		for rows.Next() {
			var (
				id        int64
				messageID uuid.UUID
				topic     string
				key       string
				payload   []byte
				metadata  []byte
				createdAt time.Time
				attempts  int
			)
			require.NoError(b, rows.Scan(&id, &messageID, &topic, &key, &payload, &metadata, &createdAt, &attempts))
			ids = append(ids, id)
		}
		require.NoError(b, rows.Err())
		if len(ids) == 0 {
			return total
		}
		_, err = pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
		require.NoError(b, err)
		total += len(ids)
	}
}

// drainer is a relay kept running across drains, idle between them (its
// poll is a minute long), so its start-up is not measured.
type drainer struct {
	pool *pgxpool.Pool
	stop func()
}

func startDrainer(b *testing.B, pool *pgxpool.Pool, pub message.Publisher, cfg relay.Config) *drainer {
	b.Helper()
	cfg.Logger = testLogger(b)
	cfg.PollInterval = time.Minute
	r, err := relay.New(pool, pub, cfg)
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for !r.IsLeader() {
		time.Sleep(time.Millisecond)
	}
	return &drainer{pool: pool, stop: func() {
		cancel()
		require.NoError(b, <-done)
	}}
}

// drain wakes the relay on the filled outbox and returns once it has
// published n rows and deleted them.
func (d *drainer) drain(b *testing.B, published func() int64, n int) {
	b.Helper()
	ctx := context.Background()
	_, err := d.pool.Exec(ctx, `SELECT pg_notify($1, '')`, outbox.NotifyChannel)
	require.NoError(b, err)
	deadline := time.Now().Add(5 * time.Minute)
	for published() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("drain: %d of %d published after 5 minutes", published(), n)
		}
		time.Sleep(time.Millisecond)
	}
	var left bool
	for {
		if time.Now().After(deadline) {
			b.Fatal("drain: published rows not deleted after 5 minutes")
		}
		require.NoError(b, d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox)`).Scan(&left))
		if !left {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkRelayDrain drains pre-filled rows with a no-op publisher and, in
// the same run, alternating with it, the raw claim-and-delete loop, and
// reports both rates and their ratio.
//
//	go test -run '^$' -bench 'BenchmarkRelayDrain$' -benchtime 10x ./relay/ -args -relay.drain=20000
func BenchmarkRelayDrain(b *testing.B) {
	pool := pgtest.NewPool(b)
	n := *drainRows
	pub := &countingPublisher{}
	d := startDrainer(b, pool, pub, relay.Config{})
	defer d.stop()
	var raw, rel time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fillOutbox(b, pool, n, testTopic)
		b.StartTimer()
		t0 := time.Now()
		require.Equal(b, n, rawDrain(b, pool))
		raw += time.Since(t0)

		b.StopTimer()
		fillOutbox(b, pool, n, testTopic)
		pub.n.Store(0)
		b.StartTimer()
		t0 = time.Now()
		d.drain(b, pub.n.Load, n)
		rel += time.Since(t0)
	}
	rawRate := float64(n*b.N) / raw.Seconds()
	relayRate := float64(n*b.N) / rel.Seconds()
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(relayRate, "relay_msgs/s")
	b.ReportMetric(relayRate/rawRate, "ratio")
}

// BenchmarkRelayDrainNATS drains pre-filled rows into a NATS JetStream
// stream (an embedded server on loopback, every publish acknowledged) with
// 1 to 32 lanes: the measurement behind ConcurrencyDefault.
//
//	go test -run '^$' -bench BenchmarkRelayDrainNATS -benchtime 3x ./relay/ -args -relay.drain=20000
func BenchmarkRelayDrainNATS(b *testing.B) {
	pool := pgtest.NewPool(b)
	url := *natsURL
	if url == "" {
		ns := startNATS(b, 0, b.TempDir())
		defer stopNATS(ns)
		url = ns.ClientURL()
	}
	nc, err := nats.Connect(url)
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	// A stream of the benchmark's own, in case the server is shared.
	name := "RELAY_BENCH_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
	})
	require.NoError(b, err)
	defer js.DeleteStream(context.Background(), name) //nolint:errcheck
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL: url, JetStream: wmnats.JetStreamConfig{TrackMsgId: true},
	}, nil)
	require.NoError(b, err)
	defer pub.Close()
	streamed := func() int64 {
		info, err := stream.Info(context.Background())
		require.NoError(b, err)
		return int64(info.State.Msgs)
	}

	n := *drainRows
	for _, lanes := range []int{1, 2, 4, 8, 16, 32} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			d := startDrainer(b, pool, pub, relay.Config{Concurrency: lanes})
			defer d.stop()
			var took time.Duration
			for range b.N {
				b.StopTimer()
				require.NoError(b, stream.Purge(context.Background()))
				fillOutbox(b, pool, n, name+".events")
				b.StartTimer()
				t0 := time.Now()
				d.drain(b, streamed, n)
				took += time.Since(t0)
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkCommitToPublish measures the time from COMMIT to Publish at a
// light, steady rate (one message per transaction), woken by LISTEN/NOTIFY.
//
//	go test -run '^$' -bench BenchmarkCommitToPublish -benchtime 5000x ./relay/ -args -relay.rate=500
func BenchmarkCommitToPublish(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	var (
		mu        sync.Mutex
		committed = map[string]time.Time{}
		latencies = make([]time.Duration, 0, b.N)
	)
	pub := publishFunc(func(msgs ...*message.Message) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if t0, ok := committed[m.UUID]; ok {
				latencies = append(latencies, now.Sub(t0))
				delete(committed, m.UUID)
			}
		}
	})
	r, err := relay.New(pool, pub, relay.Config{Logger: testLogger(b)})
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() {
		cancel()
		require.NoError(b, <-done)
	}()
	for !r.IsLeader() {
		time.Sleep(time.Millisecond)
	}

	tick := time.NewTicker(time.Second / time.Duration(*latencyRate))
	defer tick.Stop()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		m := outbox.Message{ID: uuid.New(), Topic: testTopic, Key: "k", Payload: []byte(`{}`)}
		tx, err := pool.Begin(ctx)
		require.NoError(b, err)
		require.NoError(b, outbox.EnqueueTx(ctx, tx, m))
		mu.Lock()
		committed[m.ID.String()] = time.Now()
		mu.Unlock()
		require.NoError(b, tx.Commit(ctx))
	}
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n == b.N {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(pct(1), "max_ms")
}

// publishFunc is a publisher that hands messages to a function.
type publishFunc func(msgs ...*message.Message)

func (f publishFunc) Publish(_ string, msgs ...*message.Message) error {
	f(msgs...)
	return nil
}

func (f publishFunc) Close() error { return nil }
