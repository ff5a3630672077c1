package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/relay"
)

// plainPublisher is a Watermill publisher without PublishBatch.
type plainPublisher struct{}

func (plainPublisher) Publish(string, ...*message.Message) error { return nil }
func (plainPublisher) Close() error                              { return nil }

// batchPublisher fails the messages whose UUID is in fail.
type batchPublisher struct {
	plainPublisher
	fail map[string]bool
}

func (p batchPublisher) PublishBatch(_ context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	for i, o := range run {
		if p.fail[o.Message.UUID] {
			errs[i] = errors.New("refused")
		}
	}
	return errs
}

// TestForRelayKeepsPublishBatch: a relay sees the counting wrapper as a
// relay.BatchPublisher exactly when the publisher it wraps is one (or it is
// the no-op publisher), and only the messages stored are counted and seen.
func TestForRelayKeepsPublishBatch(t *testing.T) {
	t.Parallel()
	_, ok := forRelay(&countingPublisher{pub: plainPublisher{}}).(relay.BatchPublisher)
	require.False(t, ok, "a plain publisher stays one message at a time")
	_, ok = forRelay(&countingPublisher{}).(relay.BatchPublisher)
	require.True(t, ok, "the no-op publisher pipelines")
	_, ok = forRelay(plainPublisher{}).(relay.BatchPublisher)
	require.False(t, ok, "anything else is left as it is")

	var seen []string
	cp := &countingPublisher{
		pub:   batchPublisher{fail: map[string]bool{"b": true}},
		after: func(m *message.Message) { seen = append(seen, m.UUID) },
	}
	bp, ok := forRelay(cp).(relay.BatchPublisher)
	require.True(t, ok, "a BatchPublisher's PublishBatch is forwarded")
	run := []relay.Outgoing{
		{Topic: "t", Message: message.NewMessage("a", nil)},
		{Topic: "t", Message: message.NewMessage("b", nil)},
		{Topic: "t", Message: message.NewMessage("c", nil)},
	}
	errs := bp.PublishBatch(context.Background(), run)
	require.Len(t, errs, 3)
	require.NoError(t, errs[0])
	require.Error(t, errs[1], "the wrapped publisher's fates are returned")
	require.NoError(t, errs[2])
	require.Equal(t, int64(2), cp.n.Load(), "the failed message is not counted")
	require.Equal(t, []string{"a", "c"}, seen)

	noop := &countingPublisher{}
	for _, err := range forRelay(noop).(relay.BatchPublisher).PublishBatch(context.Background(), run) {
		require.NoError(t, err)
	}
	require.Equal(t, int64(3), noop.n.Load())
}
