package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// captureWritersDefault is the number of writers of the capture benchmark
// when Config.Concurrency does not set it.
const captureWritersDefault = 8

// captureTarget is issue 11's target: the relay in wal captures at least
// this share of a raw pglogrepl receive loop's rate.
const captureTarget = 0.5

// captureTimeout bounds one capture run.
const captureTimeout = 30 * time.Minute

// captureResult is one capture run: rows out per second from the first
// commit to the last row out, and the writers' own rate meanwhile.
type captureResult struct {
	rate, writeRate float64
}

// runCapture measures sustained capture: writers insert e.cfg.Messages
// outbox rows at full speed while the relay in wal publishes them to a
// no-op publisher, then, on a fresh table, while a raw pglogrepl receive
// loop on a slot of its own reads them.
func runCapture(ctx context.Context, e *env) ([]Table, error) {
	n := cmp.Or(e.cfg.Messages, MessagesDefault)
	writers := e.concurrency(captureWritersDefault)
	ours, err := e.captureRelay(ctx, n, writers)
	if err != nil {
		return nil, err
	}
	raw, err := e.captureRaw(ctx, n, writers)
	if err != nil {
		return nil, err
	}
	rate := Row{Figure: "sustained capture, first commit → last row out: relay in wal, no-op publisher vs raw pglogrepl receive loop",
		Unit: "msg/s", Ours: ours.rate, Baseline: raw.rate}
	rate.Goal = goal(rate.Ratio() >= captureTarget, "≥ %.1f × raw", captureTarget)
	t := Table{
		Name: "capture",
		Title: fmt.Sprintf("capture: %d outbox rows written at full speed (%d writers, %d rows a transaction), relay in wal vs a raw pglogrepl loop",
			n, writers, e.cfg.TxRows),
		Baseline: "raw pglogrepl",
		Rows: []Row{
			rate,
			{Figure: "writers' commit rate meanwhile, first commit → last commit", Unit: "msg/s", Ours: ours.writeRate, Baseline: raw.writeRate},
		},
		Notes: []string{
			fmt.Sprintf("writers: %d goroutines, each sending outbox.Writer{WithoutNotify: true}.EnqueueBatch of %d user.created rows as one batch (one implicit transaction), until %d rows are written", writers, e.cfg.TxRows, n),
			"ours: the relay in wal (its own slot, started and streaming before the first write) through its whole pipeline (lanes, spans, metrics, the delete of each published row) into a publisher that drops everything",
			fmt.Sprintf("raw: a temporary slot of its own on %s, START_REPLICATION proto_version '1', binary 'true'; every message parsed with pglogrepl.Parse, inserts counted, standby status every %s and when asked; nothing published, nothing deleted",
				relay.PublicationDefault, relay.WALStatusIntervalDefault),
			"one after the other on a fresh table each, never at once; both clocks run from the first commit to the last row published or received",
			"when the writers' rate and the capture rate are alike, the writers were the bound, not the capture",
			fmt.Sprintf("target (issue 11): ratio ≥ %.1f", captureTarget),
		},
	}
	return []Table{t}, nil
}

// captureRelay runs the writers against the relay in wal with a no-op
// publisher.
func (e *env) captureRelay(ctx context.Context, n, writers int) (captureResult, error) {
	if err := e.resetTables(ctx); err != nil {
		return captureResult{}, err
	}
	pub := &countingPublisher{}
	r, err := e.startRelay(ctx, pub, 0, relay.CaptureWAL)
	if err != nil {
		return captureResult{}, err
	}
	defer r.stop()
	stop := progress(e.cfg.Progress, "capture: relay in wal, no-op publisher", int64(n), &pub.n)
	defer stop()
	return e.captureRun(ctx, n, writers, func(ctx context.Context) (time.Time, error) {
		if err := waitCount(ctx, &pub.n, int64(n), captureTimeout); err != nil {
			return time.Time{}, fmt.Errorf("capture relay: %w", err)
		}
		return time.Now(), nil
	})
}

// captureRaw runs the writers against a raw pglogrepl receive loop.
func (e *env) captureRaw(ctx context.Context, n, writers int) (captureResult, error) {
	if err := e.resetTables(ctx); err != nil {
		return captureResult{}, err
	}
	conn, err := e.replicationConn(ctx)
	if err != nil {
		return captureResult{}, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	slot := "outboxd_bench_raw_" + randomHex(6)
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return captureResult{}, fmt.Errorf("capture raw: create slot: %w", err)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return captureResult{}, fmt.Errorf("capture raw: consistent point: %w", err)
	}
	err = pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names '" + relay.PublicationDefault + "'",
			"binary 'true'",
		},
	})
	if err != nil {
		return captureResult{}, fmt.Errorf("capture raw: start replication: %w", err)
	}
	var received atomic.Int64
	stop := progress(e.cfg.Progress, "capture: raw pglogrepl receive loop", int64(n), &received)
	defer stop()
	return e.captureRun(ctx, n, writers, func(ctx context.Context) (time.Time, error) {
		return rawReceive(ctx, conn, start, int64(n), &received)
	})
}

// captureRun writes n rows from writers goroutines while receive, started
// first, waits for the last of them to come out and returns when it did.
func (e *env) captureRun(ctx context.Context, n, writers int, receive func(context.Context) (time.Time, error)) (captureResult, error) {
	ctx, cancel := context.WithTimeout(ctx, captureTimeout)
	defer cancel()
	var (
		last    time.Time
		recvErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		last, recvErr = receive(ctx)
		if recvErr != nil {
			cancel() // the writers stop too
		}
	}()
	first, lastCommit, err := e.writeRows(ctx, n, writers)
	if err != nil {
		cancel()
	}
	<-done
	if err := errors.Join(err, recvErr); err != nil {
		return captureResult{}, err
	}
	return captureResult{
		rate:      float64(n) / last.Sub(first).Seconds(),
		writeRate: float64(n) / lastCommit.Sub(first).Seconds(),
	}, nil
}

// writeRows inserts n user.created outbox rows from writers goroutines,
// e.cfg.TxRows a transaction, as writers feeding a relay in wal do
// (Writer{WithoutNotify: true}, one batch), and returns when the first and
// the last commit returned.
func (e *env) writeRows(ctx context.Context, n, writers int) (first, last time.Time, err error) {
	var (
		next     atomic.Int64
		once     sync.Once
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := outbox.Writer{WithoutNotify: true}
	per := int64(e.cfg.TxRows)
	for worker := range writers {
		wg.Go(func() {
			msgs := make([]outbox.Message, 0, per)
			for {
				hi := next.Add(per)
				lo := hi - per
				if lo >= int64(n) {
					return
				}
				msgs = msgs[:0]
				for i := lo; i < min(hi, int64(n)); i++ {
					id, email := newUser(worker, int(i))
					msgs = append(msgs, userCreated(id, email, time.Now().UTC()))
				}
				b := &pgx.Batch{}
				err := w.EnqueueBatch(b, msgs...)
				if err == nil {
					err = e.pool.SendBatch(ctx, b).Close()
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("write outbox rows: %w", err) })
					cancel()
					return
				}
				once.Do(func() { first = time.Now() })
			}
		})
	}
	wg.Wait()
	return first, time.Now(), firstErr
}

// rawReceive reads the started stream on conn, parses every pgoutput
// message, counts the inserts into received and returns when the n-th
// arrived. It reports its position every relay.WALStatusIntervalDefault and
// when the server asks, as a real consumer must.
func rawReceive(ctx context.Context, conn *pgconn.PgConn, pos pglogrepl.LSN, n int64, received *atomic.Int64) (time.Time, error) {
	report := func() error {
		return pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos, ClientTime: time.Now(),
		})
	}
	next := time.Now().Add(relay.WALStatusIntervalDefault)
	for {
		if time.Now().After(next) {
			if err := report(); err != nil {
				return time.Time{}, fmt.Errorf("capture raw: status: %w", err)
			}
			next = time.Now().Add(relay.WALStatusIntervalDefault)
		}
		recvCtx, cancel := context.WithDeadline(ctx, next)
		msg, err := conn.ReceiveMessage(recvCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && pgconn.Timeout(err) {
				continue
			}
			return time.Time{}, fmt.Errorf("capture raw: receive: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			return time.Time{}, fmt.Errorf("capture raw: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return time.Time{}, fmt.Errorf("capture raw: %w", err)
				}
				if ka.ReplyRequested {
					next = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return time.Time{}, fmt.Errorf("capture raw: %w", err)
				}
				m, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					return time.Time{}, fmt.Errorf("capture raw: parse: %w", err)
				}
				if c, ok := m.(*pglogrepl.CommitMessage); ok {
					pos = max(pos, c.TransactionEndLSN)
				}
				if _, ok := m.(*pglogrepl.InsertMessage); ok && received.Add(1) == n {
					return time.Now(), nil
				}
			}
		}
	}
}
