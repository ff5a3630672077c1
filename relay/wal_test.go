package relay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// walConfig is a WAL-capture relay config.
func walConfig(cfg relay.Config) relay.Config {
	cfg.Capture = relay.CaptureWAL
	return cfg
}

// newSlotWait bounds the wait for a relay's first messages after it starts
// on a new slot. Creating a logical slot waits for every transaction that
// holds an xid anywhere in the cluster (other tests' databases included)
// to end; once in CI, beside every other package's tests, a relay on a new
// slot published nothing for 20 s (its log, printed on failure now, will
// say why if it happens again).
const newSlotWait = time.Minute

// dropSlot drops pool's default slot once a stopped relay's walsender,
// which ends a moment after its connection, has let it go.
func dropSlot(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slotOf(pool))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "drop the slot once no walsender streams it")
}

// slotOf is the default slot of pool's database.
func slotOf(pool *pgxpool.Pool) string { return relay.SlotName(pool.Config().ConnConfig.Database) }

// What the table holds when the slot is new is published first, then what
// the stream carries, each once.
func TestWALPublishesTheTableThenTheStream(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	reg := prometheus.NewPedanticRegistry()
	var w keyedWriter
	for range 5 {
		enqueue(t, pool, w.next("a"), w.next("b"))
	}
	r := start(t, newRelay(t, pool, s, walConfig(relay.Config{Registerer: reg})))
	s.waitDistinct(t, 10, newSlotWait)
	require.Equal(t, relay.CaptureWAL, r.Capture())
	for range 5 {
		enqueue(t, pool, w.next("a"), w.next("b"))
	}
	s.waitDistinct(t, 20, 20*time.Second)
	requireKeyOrder(t, s.all())
	require.Len(t, s.all(), 20, "no message twice")
	require.Eventually(t, func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(resyncs(t, reg, "new_slot")), "a new slot is said in a metric")
	require.Equal(t, 1, countRows(t, pool, `SELECT count(*) FROM relay_slot WHERE slot_name = $1 AND drained_at IS NOT NULL`, slotOf(pool)))
}

// resyncs is the outboxd_relay_capture_resyncs_total counter of reason.
func resyncs(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, f := range families {
		if f.GetName() != "outboxd_relay_capture_resyncs_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

// Writers commit all the time while a relay starts on a new slot: every
// message goes out exactly once, in order per key, whether it was in the
// table's snapshot or in the stream.
func TestWALHandOffFromTableToStreamHasNoGapAndNoOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	var w keyedWriter
	writeCtx, stopWriting := context.WithCancel(ctx)
	var writers sync.WaitGroup
	t.Cleanup(func() { stopWriting(); writers.Wait() })
	var wrote atomic.Int64
	for wr := range 4 {
		writers.Go(func() {
			for i := 0; writeCtx.Err() == nil; i++ {
				enqueue(t, pool, w.next(fmt.Sprintf("w%d-k%d", wr, i%3)), w.next(fmt.Sprintf("w%d-k%d", wr, (i+1)%3)))
				wrote.Add(2)
			}
		})
	}
	require.Eventually(t, func() bool { return wrote.Load() > 400 }, 10*time.Second, time.Millisecond)
	before := int(wrote.Load())
	start(t, newRelay(t, pool, s, walConfig(relay.Config{BatchSize: 50})))
	require.Eventually(t, func() bool { return s.distinct() > before+400 }, 30*time.Second, time.Millisecond,
		"the relay streams while the writers write")
	stopWriting()
	writers.Wait()

	written := w.written()
	s.waitDistinct(t, len(written), 30*time.Second)
	require.Len(t, s.all(), len(written), "no message published twice at the hand-off")
	requireKeyOrder(t, s.all())
}

// Commit order is the stream's: a transaction left open holds back nothing
// but itself, and a key's messages go out in the order their transactions
// committed, whatever their ids.
func TestWALPublishesInCommitOrderPastAnOpenTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	waitStreaming(t, pool)

	first, second := msgSeq("k", 2), msgSeq("k", 1)
	open, err := pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = open.Rollback(ctx) })
	require.NoError(t, outbox.EnqueueTx(ctx, open, first)) // the lower id, committed last

	enqueue(t, pool, second)
	others := make([]outbox.Message, 20)
	for i := range others {
		others[i] = msgSeq(fmt.Sprintf("o%d", i), 1)
		enqueue(t, pool, others[i])
	}
	began := time.Now()
	s.waitDistinct(t, 21, 5*time.Second)
	t.Logf("21 messages out in %s while a transaction is open", time.Since(began).Round(time.Millisecond))
	require.False(t, s.has(first.ID))

	require.NoError(t, open.Commit(ctx))
	s.waitDistinct(t, 22, 5*time.Second)
	var order []string
	for _, d := range s.all() {
		if d.key == "k" {
			order = append(order, d.id)
		}
	}
	require.Equal(t, []string{second.ID.String(), first.ID.String()}, order, "commit order")
}

// The slot is dropped while the relay is down, and messages are written
// before and after: the next relay publishes what the table holds, then
// streams; nothing is lost.
func TestWALSlotDroppedWhileDownLosesNothing(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	var w keyedWriter
	enqueue(t, pool, w.next("a"), w.next("b"))
	r := start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	s.waitDistinct(t, 2, newSlotWait)
	r.stop(t)

	enqueue(t, pool, w.next("a"), w.next("b"))
	dropSlot(t, pool)
	enqueue(t, pool, w.next("a"), w.next("b"))

	reg := prometheus.NewPedanticRegistry()
	start(t, newRelay(t, pool, s, walConfig(relay.Config{Registerer: reg})))
	s.waitDistinct(t, 6, newSlotWait)
	enqueue(t, pool, w.next("a"))
	s.waitDistinct(t, 7, 20*time.Second)
	requireKeyOrder(t, s.all())
	require.Len(t, s.all(), 7)
	require.Equal(t, 1.0, testutil.ToFloat64(resyncs(t, reg, "new_slot")))
}

// The relay stops between creating a new slot and recording it (here the
// record's write fails once), while the record of the dropped slot before
// it says drained: the next attempt must not take that record for the new
// slot's and stream from it, skipping what the table holds; it replaces
// the slot instead and publishes the table first.
func TestWALRecordOfADroppedSlotDoesNotPassForTheNewOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	var w keyedWriter
	enqueue(t, pool, w.next("a"), w.next("b"))
	r := start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	s.waitDistinct(t, 2, newSlotWait)
	waitStreaming(t, pool) // its record says drained
	r.stop(t)
	dropSlot(t, pool)
	enqueue(t, pool, w.next("a"), w.next("b"))

	_, err := pool.Exec(ctx, `
CREATE SEQUENCE relay_slot_writes;
CREATE FUNCTION fail_first_relay_slot_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('relay_slot_writes') = 1 THEN
		RAISE EXCEPTION 'the relay stops between creating its slot and recording it';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fail_first_write BEFORE INSERT OR UPDATE ON relay_slot
	FOR EACH ROW EXECUTE FUNCTION fail_first_relay_slot_write();`)
	require.NoError(t, err)

	reg := prometheus.NewPedanticRegistry()
	start(t, newRelay(t, pool, s, walConfig(relay.Config{Registerer: reg})))
	s.waitDistinct(t, 4, newSlotWait)
	enqueue(t, pool, w.next("a"))
	s.waitDistinct(t, 5, newSlotWait)
	requireKeyOrder(t, s.all())
	require.GreaterOrEqual(t, testutil.ToFloat64(resyncs(t, reg, "unknown_slot")), 1.0, "the unrecorded slot is replaced")
}

// A slot the relay did not make (or whose record is gone) has an unknown
// past: the relay replaces it and publishes what the table holds.
func TestWALReplacesASlotOfUnknownPast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slotOf(pool))
	require.NoError(t, err)
	enqueue(t, pool, msgSeq("k", 1))

	s := newSink(t)
	reg := prometheus.NewPedanticRegistry()
	start(t, newRelay(t, pool, s, walConfig(relay.Config{Registerer: reg})))
	s.waitDistinct(t, 1, newSlotWait)
	// At least once: a step that fails after the relay created its new
	// slot and before it recorded it (seen once in CI, under load) leaves
	// a slot without a record, which the retry replaces again, rightly.
	require.GreaterOrEqual(t, testutil.ToFloat64(resyncs(t, reg, "unknown_slot")), 1.0)
}

// The broker acknowledged a message, then the relay died before the slot
// confirmed it: the next relay publishes it again, with the same message
// id, and loses nothing.
func TestWALRelayKilledBetweenAckAndConfirmRepublishes(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	first := start(t, newRelay(t, pool, newSink(t), walConfig(relay.Config{})))
	waitStreaming(t, pool) // the slot exists, drained
	first.stop(t)

	hung := make(chan struct{})
	var once sync.Once
	stuck := &ackThenHang{sink: s, hang: func(m *message.Message) bool {
		if m.Metadata.Get("seq") != "3" {
			return false
		}
		once.Do(func() { close(hung) })
		return true
	}}
	var w keyedWriter
	for range 5 {
		enqueue(t, pool, w.next("k"))
	}
	r := start(t, newRelay(t, pool, stuck, walConfig(relay.Config{})))
	<-hung // message 3 is at the broker, the relay has not heard back
	r.stop(t)
	require.Equal(t, 3, s.distinct())

	start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	s.waitDistinct(t, 5, newSlotWait)
	requireKeyOrder(t, s.all())
	deliveries := map[string]int{}
	for _, d := range s.all() {
		deliveries[d.id]++
	}
	require.Equal(t, 2, deliveries[w.written()[2].String()], "message 3 again, same id")
	require.Eventually(t, func() bool { return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0 },
		10*time.Second, 10*time.Millisecond)
}

// ackThenHang delivers every message to sink; for those hang selects, it
// then blocks until the relay gives up, like a broker whose acknowledgement
// never comes back.
type ackThenHang struct {
	sink *sink
	hang func(*message.Message) bool
}

func (a *ackThenHang) Publish(topic string, msgs ...*message.Message) error {
	if err := a.sink.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		if a.hang(m) {
			<-m.Context().Done()
			return m.Context().Err()
		}
	}
	return nil
}

func (a *ackThenHang) Close() error { return nil }

// An idle outbox pins no WAL: while other tables of the database (and
// other databases) write, the slot's confirmed position follows.
func TestWALIdleSlotFollowsTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	enqueue(t, pool, msgSeq("k", 1))
	s.waitDistinct(t, 1, newSlotWait)

	_, err := pool.Exec(ctx, `CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000) AS g`)
	require.NoError(t, err)
	var after string
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&after))
	require.Eventually(t, func() bool {
		var passed bool
		err := pool.QueryRow(ctx, `SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
			slotOf(pool), after).Scan(&passed)
		return err == nil && passed
	}, 20*time.Second, 20*time.Millisecond, "the idle slot's position passes the WAL written since")
}

// A dead leader's walsender still holds the slot (its network is gone, the
// server has not noticed): the new leader ends it and streams within 5 s.
func TestWALNewLeaderEndsTheWalsenderADeadOneLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	first := start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	waitStreaming(t, pool)
	first.stop(t)

	// A stand-in for the dead leader's walsender, streaming the slot.
	cfg := pool.Config().ConnConfig.Config.Copy()
	cfg.RuntimeParams["replication"] = "database"
	ghost, err := pgconn.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ghost.Close(context.Background()) })
	err = pglogrepl.StartReplication(ctx, ghost, slotOf(pool), 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'outbox_publication'"},
	})
	require.NoError(t, err)
	require.Equal(t, 1, countRows(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slotOf(pool)))

	began := time.Now()
	start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	enqueue(t, pool, msgSeq("k", 1))
	s.waitDistinct(t, 1, 5*time.Second)
	t.Logf("streaming again %s after the new leader started", time.Since(began).Round(time.Millisecond))
}

// wal on a database whose publication is missing fails at start, saying
// what to do; auto polls there instead.
func TestWALUnavailableFailsFastAndAutoPolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, `DROP PUBLICATION outbox_publication`)
	require.NoError(t, err)
	s := newSink(t)

	r := newRelay(t, pool, s, walConfig(relay.Config{}))
	err = r.Run(ctx)
	require.ErrorIs(t, err, relay.ErrWALUnavailable)
	require.ErrorContains(t, err, "publication outbox_publication does not exist")

	auto := start(t, newRelay(t, pool, s, relay.Config{Capture: relay.CaptureAuto}))
	enqueue(t, pool, msgSeq("k", 1))
	s.waitDistinct(t, 1, 10*time.Second)
	require.Equal(t, relay.CapturePoll, auto.Capture())
}

// The walsender streams a commit a moment before other sessions can see
// it: a message must not reach the broker before the rows its transaction
// wrote are visible, or a consumer acts on a change it cannot read.
func TestWALPublishesOnlyCommitsOthersCanSee(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, `CREATE TABLE things (id uuid PRIMARY KEY)`)
	require.NoError(t, err)
	s := newSink(t)
	var unseen, checked atomic.Int64
	s.setFail(func(m *message.Message) error {
		var seen bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM things WHERE id = $1)`, m.UUID).Scan(&seen); err != nil {
			return err
		}
		checked.Add(1)
		if !seen {
			unseen.Add(1)
		}
		return nil
	})
	start(t, newRelay(t, pool, s, walConfig(relay.Config{})))
	waitStreaming(t, pool)

	const writers, perWriter = 8, 1000
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range perWriter {
				m := msgSeq("", 1)
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO things VALUES ($1)`, m.ID); err != nil {
						return err
					}
					return outbox.Writer{WithoutNotify: true}.EnqueueTx(ctx, tx, m)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s.waitDistinct(t, writers*perWriter, 30*time.Second)
	require.Zero(t, unseen.Load(), "messages published before their commit was visible, of %d", checked.Load())
}

// Ready tells an idle stream from a stalled one: an idle WAL relay with
// nothing pending is ready; one whose broker is down while streamed
// messages wait is not, and is again once they go out.
func TestWALReadyTellsStalledFromIdle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	r := start(t, newRelay(t, pool, s, walConfig(relay.Config{StallTimeout: 300 * time.Millisecond})))
	waitStreaming(t, pool)

	idleSince := time.Now()
	require.Eventually(t, func() bool { return time.Since(idleSince) > time.Second && r.Ready(ctx) == nil },
		10*time.Second, 10*time.Millisecond, "idle past the stall timeout and still ready")

	s.setFail(func(*message.Message) error { return errBrokerDown })
	enqueue(t, pool, msgSeq("k", 1))
	require.Eventually(t, func() bool { return r.Ready(ctx) != nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, r.Ready(ctx), "stalled")

	s.setFail(nil)
	s.waitDistinct(t, 1, 10*time.Second)
	require.Eventually(t, func() bool { return r.Ready(ctx) == nil }, 10*time.Second, 10*time.Millisecond)
}
