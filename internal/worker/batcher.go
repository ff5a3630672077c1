package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/outbox/inbox"
)

// batcher gathers the messages one handler works on at the same time into
// batches of database work (its apply: an inbox.ProcessSet transaction for
// profile and audit, the inbox lookups and records of email), below the
// middleware: each message's attempt submits its delivery and waits for
// its own outcome, so retries, dead letters, metrics and traces stay per
// message.
//
// A batch is written when it holds size messages, when it holds every
// attempt in flight not in a batch already while no full batch is being
// written (an idle worker adds no latency), or as soon as a writer is free
// once wait has passed since its first message. Under load a batch grows
// while the one before it commits, as a group commit does. Up to
// batchWriters batches are written at once, so that a slow one does not
// hold back the attempts after it; they never share a key, since the key
// rule (keyOrdered) lets a message in only after the handler is done with
// the one of its key before it. A handler holds batchWriters+1 full batches (Config.Held),
// so that one fills while the others commit.
const batchWriters = 2

type batcher struct {
	handler string
	apply   applyFunc
	size    int
	wait    time.Duration
	timeout time.Duration       // bounds one batch's transaction
	sizes   prometheus.Observer // nil: not observed

	inFlight atomic.Int64 // attempts between enter and leave
	batched  atomic.Int64 // attempts in a batch being written
	requests chan *batchRequest
	writers  chan struct{} // a slot per batch being written
	// wake says a batch was written or an attempt left: a waiting batch
	// may now hold every attempt in flight, so look again.
	wake chan struct{}
}

type batchRequest struct {
	ctx      context.Context
	delivery delivery
	result   chan inbox.Outcome // buffered: the batcher never blocks on it
}

// applyFunc does a batch's work and returns one outcome per delivery, or
// an error of the batch as a whole.
type applyFunc func(ctx context.Context, ds []delivery) ([]inbox.Outcome, error)

// newCollector returns a batcher that does its batches with apply, up to
// writers of them at once.
func newCollector(handler string, apply applyFunc, writers int, cfg Config) *batcher {
	return &batcher{
		handler:  handler,
		apply:    apply,
		size:     cfg.BatchSize,
		wait:     cfg.BatchWait,
		timeout:  cfg.HandlerTimeout,
		requests: make(chan *batchRequest),
		writers:  make(chan struct{}, writers),
		wake:     make(chan struct{}, 1),
	}
}

// enter counts an attempt in flight from its start, so that a batch waits
// for attempts still decoding their message; leave ends the count and
// wakes a batch that may now hold every attempt in flight (the attempts of
// a batch just written leave after it is written, and a batch waiting for
// them would otherwise wait out BatchWait).
func (b *batcher) enter() { b.inFlight.Add(1) }
func (b *batcher) leave() {
	b.inFlight.Add(-1)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// process hands d to the next batch and returns its outcome's Done (for a
// batcher of newBatcher, false for a message the inbox had already seen, as
// inbox.Process does; for one of newLookups, whether the inbox has seen
// it) and error. If ctx
// ends first, process returns its error: the message is nacked, and if its
// batch commits after all, the redelivery is a duplicate.
func (b *batcher) process(ctx context.Context, d delivery) (bool, error) {
	req := &batchRequest{ctx: ctx, delivery: d, result: make(chan inbox.Outcome, 1)}
	select {
	case b.requests <- req:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case o := <-req.result:
		return o.Done, o.Err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// run collects and writes batches until ctx ends, and returns once the
// batches being written are done.
func (b *batcher) run(ctx context.Context) {
	var writing sync.WaitGroup
	defer writing.Wait()
	for {
		var batch []*batchRequest
		select {
		case r := <-b.requests:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
		timer := time.NewTimer(b.wait)
		waited, acquired := false, false
	collect:
		for len(batch) < b.size {
			var writer chan<- struct{}
			if waited || b.worthWriting(len(batch)) {
				writer = b.writers
			}
			select {
			case r := <-b.requests:
				batch = append(batch, r)
			case writer <- struct{}{}:
				acquired = true
				break collect
			case <-b.wake: // look again
			case <-timer.C:
				waited = true
			case <-ctx.Done():
				timer.Stop()
				return // the waiting attempts end with their own contexts
			}
		}
		timer.Stop()
		if !acquired {
			select {
			case b.writers <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		b.batched.Add(int64(len(batch)))
		writing.Go(func() {
			defer func() {
				b.batched.Add(-int64(len(batch)))
				<-b.writers
				select {
				case b.wake <- struct{}{}:
				default:
				}
			}()
			b.write(ctx, batch)
		})
	}
}

// worthWriting reports whether a batch of n messages should be written as
// soon as a writer is free, before the wait has passed: when it holds every
// attempt in flight not in a batch already, while the batches being written
// are less than a full one (a worker at ease adds no latency). Otherwise,
// under load, it grows while the batches before it commit.
func (b *batcher) worthWriting(n int) bool {
	batched := b.batched.Load()
	return batched < int64(b.size) && int64(n) >= b.inFlight.Load()-batched
}

// write processes batch in one transaction and hands each request its
// outcome. A failure of the batch as a whole is every message's error; the
// retries then meet again in a later batch.
func (b *batcher) write(ctx context.Context, batch []*batchRequest) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil { // an attempt that gave up is nacked already
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if b.sizes != nil {
		b.sizes.Observe(float64(len(live)))
	}
	ds := make([]delivery, len(live))
	for i, r := range live {
		ds[i] = r.delivery
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	// A batch that nobody waits for any more is abandoned: its messages are
	// nacked already and come again.
	var waiting atomic.Int64
	waiting.Store(int64(len(live)))
	for _, r := range live {
		stop := context.AfterFunc(r.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	outcomes, err := b.apply(ctx, ds)
	for i, r := range live {
		if err != nil {
			r.result <- inbox.Outcome{ID: r.delivery.id, Err: err}
			continue
		}
		r.result <- outcomes[i]
	}
}
