package relay_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// runSink is a BatchPublisher over a sink: it stores each run's messages in
// reverse order, as a broker acknowledging out of order could, records the
// runs, and lets a test fail single messages.
type runSink struct {
	*sink
	mu   sync.Mutex
	runs [][]relay.Outgoing
	// fail, when set, decides each message's fate before it is stored.
	fail func(*message.Message) error
}

var _ relay.BatchPublisher = (*runSink)(nil)

func (s *runSink) PublishBatch(ctx context.Context, run []relay.Outgoing) []error {
	s.mu.Lock()
	s.runs = append(s.runs, slices.Clone(run))
	fail := s.fail
	s.mu.Unlock()
	errs := make([]error, len(run))
	for i := len(run) - 1; i >= 0; i-- {
		if fail != nil {
			if errs[i] = fail(run[i].Message); errs[i] != nil {
				continue
			}
		}
		errs[i] = s.sink.Publish(run[i].Topic, run[i].Message)
	}
	return errs
}

func (s *runSink) setRunFail(f func(*message.Message) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// requireOneMessagePerKeyAndRun checks that no run held two messages of one
// non-empty key: a key has at most one message unacknowledged.
func (s *runSink) requireOneMessagePerKeyAndRun(t *testing.T) (largest int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, run := range s.runs {
		seen := map[string]bool{}
		for _, o := range run {
			key := o.Message.Metadata.Get(outbox.MetadataKey)
			if key == "" {
				continue
			}
			require.False(t, seen[key], "two messages of key %q in one run", key)
			seen[key] = true
		}
		largest = max(largest, len(run))
	}
	return largest
}

// Runs keep many keys in flight at once, never two messages of one key, and
// every message goes out once, in order per key.
func TestRelayPipelinesRunsOfOneMessagePerKey(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		pool := pgtest.NewPool(t)
		s := &runSink{sink: newSink(t)}
		var w keyedWriter
		var msgs []outbox.Message
		for i := range 2000 {
			msgs = append(msgs, w.next(fmt.Sprintf("k%d", i%40)))
		}
		for i := range 200 { // no order: may share runs
			m := msgSeq("", i+1)
			msgs = append(msgs, m)
		}
		enqueue(t, pool, msgs...)
		start(t, newRelay(t, pool, s, relay.Config{Capture: capture}))
		s.waitDistinct(t, len(msgs), 30*time.Second)
		require.Len(t, s.all(), len(msgs), "each once")
		var keyed []delivery
		for _, d := range s.all() {
			if d.key != "" {
				keyed = append(keyed, d)
			}
		}
		requireKeyOrder(t, keyed)
		largest := s.requireOneMessagePerKeyAndRun(t)
		require.Greater(t, largest, 40, "runs carry every key at once, and the empty key's messages beside them")
	})
}

// The first message of a key fails inside a run, permanently and then
// transiently: its key's later messages wait, the other keys go on, and
// nothing of the key is ever acknowledged before it.
func TestRelayRunFailureHoldsBackOnlyItsKey(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"permanent", "transient"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			forEachCapture(t, func(t *testing.T, capture relay.Capture) {
				pool := pgtest.NewPool(t)
				s := &runSink{sink: newSink(t)}
				var w keyedWriter
				var msgs []outbox.Message
				for i := range 200 {
					msgs = append(msgs, w.next(fmt.Sprintf("k%d", i%10)))
				}
				victim := msgs[3] // the first of key k3
				var failures atomic.Int32
				s.setRunFail(func(m *message.Message) error {
					if m.UUID != victim.ID.String() || failures.Load() >= 3 {
						return nil
					}
					failures.Add(1)
					if kind == "permanent" {
						return fmt.Errorf("%w: %w", relay.ErrPermanent, errTooLarge)
					}
					return errBrokerDown
				})
				enqueue(t, pool, msgs...)
				start(t, newRelay(t, pool, s, relay.Config{Capture: capture, MaxAttempts: 10}))
				s.waitDistinct(t, len(msgs), 30*time.Second)
				require.EqualValues(t, 3, failures.Load())
				requireKeyOrder(t, s.all())
				s.requireOneMessagePerKeyAndRun(t)
			})
		})
	}
}
