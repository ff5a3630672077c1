package outbox

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// NotifierIntervalDefault is the default shortest time between two
// wake-ups of a Notifier.
const NotifierIntervalDefault = 2 * time.Millisecond

// notifyTimeout bounds one notification.
const notifyTimeout = 5 * time.Second

// Notifier wakes polling relays after commits with coalesced notifications:
// writers enqueue with Writer{WithoutNotify: true} and call Notify once
// their transaction has committed; the Notifier sends pg_notify on
// NotifyChannel at once, then at most once per interval however many
// commits ask, each from a transaction of its own. PostgreSQL serializes
// the commits of notifying transactions across the cluster, so moving the
// notification out of the writers' transactions lets them commit in
// parallel, for at most an interval more latency (BenchmarkEnqueueWakeUp).
//
// It needs no goroutine of the caller's: one runs while wake-ups are
// asked for and ends an interval after the last. A notification that
// fails or is lost (the process dies between a commit and Notify) delays
// its messages until the relays' next poll; it never loses one.
type Notifier struct {
	pool     *pgxpool.Pool
	interval time.Duration
	onError  func(error)
	pending  atomic.Bool
	running  atomic.Bool
}

// NewNotifier returns a Notifier that notifies through pool, at most once
// per interval (NotifierIntervalDefault when 0). onError, when not nil,
// hears of each failed notification.
func NewNotifier(pool *pgxpool.Pool, interval time.Duration, onError func(error)) *Notifier {
	if interval <= 0 {
		interval = NotifierIntervalDefault
	}
	return &Notifier{pool: pool, interval: interval, onError: onError}
}

// Notify asks for a wake-up of the relays; it never blocks. Call it after
// the transaction that enqueued messages has committed.
func (n *Notifier) Notify() {
	n.pending.Store(true)
	if n.running.CompareAndSwap(false, true) {
		go n.run()
	}
}

func (n *Notifier) run() {
	for {
		if !n.pending.Swap(false) {
			n.running.Store(false)
			// A Notify between the Swap and the Store saw running and left
			// its wake-up to this goroutine.
			if !n.pending.Load() || !n.running.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		_, err := n.pool.Exec(ctx, `SELECT pg_notify($1, '')`, NotifyChannel)
		cancel()
		if err != nil && n.onError != nil {
			n.onError(err)
		}
		// Commits that ask meanwhile share the next notification.
		time.Sleep(n.interval)
	}
}
