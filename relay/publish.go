package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"

	"github.com/outboxd/outboxd/outbox"
)

// outcome is what became of each row of a batch.
type outcome struct {
	published []int64
	failures  []failure
	// transient is the first error that was not the message's fault (broker
	// down); the unpublished rest of the batch is retried as a whole.
	transient error
}

// rowState is the fate of one row during publishing; each lane writes only
// its own rows' entries.
type rowState struct {
	published bool
	err       error // permanent failure
}

// publishBatch publishes rows through r.pub, in runs when it is a
// BatchPublisher and in lanes otherwise, and returns what became of each.
func (r *Relay) publishBatch(ctx context.Context, rows []row) outcome {
	states := make([]rowState, len(rows))
	var transient error
	if bp, ok := r.pub.(BatchPublisher); ok {
		transient = r.publishRuns(ctx, bp, rows, states)
	} else {
		transient = r.publishLanes(ctx, rows, states)
	}

	out := outcome{published: make([]int64, 0, len(rows)), transient: transient}
	for i := range rows {
		switch {
		case states[i].published:
			out.published = append(out.published, rows[i].id)
		case states[i].err != nil:
			out.failures = append(out.failures, failure{
				row:   &rows[i],
				err:   states[i].err,
				delay: backoff(rows[i].attempts+1, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax),
			})
		}
	}
	return out
}

// publishLanes publishes rows one message at a time per lane: rows are split
// by a hash of their key, each lane publishes its rows in order, and a key
// stops at its first failure so that its later messages cannot overtake the
// failed one. The first transient failure stops every lane: the broker is
// likely down, and the rest would fail too. It returns that failure.
func (r *Relay) publishLanes(ctx context.Context, rows []row, states []rowState) error {
	var (
		stop      atomic.Bool
		transient error
		once      sync.Once
	)
	lane := func(idx []int) {
		var held map[string]bool // keys stopped by a permanent failure
		for _, i := range idx {
			if stop.Load() || ctx.Err() != nil {
				return
			}
			rw := &rows[i]
			if held[rw.key] {
				continue
			}
			err := r.publishOne(ctx, rw)
			switch {
			case err == nil:
				states[i].published = true
				now := time.Now()
				r.progress.Store(now.UnixNano())
				r.metrics.publishLatency.Observe(now.Sub(rw.createdAt).Seconds())
			case ctx.Err() != nil:
				// Stopping, not failing: the message is published again later.
				return
			case r.permanent(err):
				states[i].err = err
				if held == nil {
					held = make(map[string]bool)
				}
				held[rw.key] = true
			default:
				once.Do(func() { transient = err })
				stop.Store(true)
				return
			}
		}
	}

	lanes := r.splitLanes(rows)
	if len(lanes) == 1 {
		lane(lanes[0])
		return transient
	}
	var wg sync.WaitGroup
	for _, idx := range lanes {
		wg.Go(func() { lane(idx) })
	}
	wg.Wait()
	return transient
}

// splitLanes groups the indexes of rows by lane, keeping id order in each.
func (r *Relay) splitLanes(rows []row) [][]int {
	n := min(r.cfg.Concurrency, len(rows))
	lanes := make([][]int, n)
	if n == 1 {
		lanes[0] = make([]int, len(rows))
		for i := range rows {
			lanes[0][i] = i
		}
		return lanes
	}
	for i := range rows {
		l := laneOf(rows[i].key, n)
		lanes[l] = append(lanes[l], i)
	}
	// Drop empty lanes so that no goroutine starts for nothing.
	kept := lanes[:0]
	for _, l := range lanes {
		if len(l) > 0 {
			kept = append(kept, l)
		}
	}
	return kept
}

// laneOf hashes key (FNV-1a) onto one of n lanes.
func laneOf(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// permanent tells whether err means the message can never be published.
// ErrPermanent always does, whatever Config.IsPermanent says.
func (r *Relay) permanent(err error) bool {
	return errors.Is(err, ErrPermanent) || r.cfg.IsPermanent(err)
}

// publishOne builds the Watermill message of rw and publishes it.
func (r *Relay) publishOne(ctx context.Context, rw *row) error {
	msg, err := newMessage(ctx, rw)
	if err != nil {
		// A row whose metadata does not decode can never be published.
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	span := r.startPublishSpan(ctx, msg, rw.topic)
	defer span.End()
	if err := r.pub.Publish(rw.topic, msg); err != nil {
		err = fmt.Errorf("publish message %s to %s: %w", rw.messageID, rw.topic, err)
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return err
	}
	return nil
}

// newMessage is the Watermill message of a row: the outbox message id as
// UUID, the payload as is, and the row's metadata plus the message id, the
// key and the enqueue time.
func newMessage(ctx context.Context, rw *row) (*message.Message, error) {
	md := make(message.Metadata, 5)
	if err := decodeMetadata(rw.metadata, md); err != nil {
		return nil, fmt.Errorf("message %s: %w", rw.messageID, err)
	}
	id := rw.messageID.String()
	md[outbox.MetadataMessageID] = id
	md[outbox.MetadataKey] = rw.key
	md[outbox.MetadataEnqueuedAt] = rw.createdAt.UTC().Format(time.RFC3339Nano)
	msg := message.NewMessage(id, rw.payload)
	msg.Metadata = md
	msg.SetContext(ctx)
	return msg, nil
}
