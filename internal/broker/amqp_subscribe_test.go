package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestAMQPSubscriptionLostConnectionIsDialledAgain checks that when the
// connection of a RabbitMQ subscription with Config.InFlight set is lost,
// the consumer is told that the messages in hand can no longer be
// answered, and the group gets them again, with the rest, on a connection
// dialled again. TestSubscriptionHandsOnInFlight checks the rest of what
// InFlight means.
func TestAMQPSubscriptionLostConnectionIsDialledAgain(t *testing.T) {
	t.Parallel()
	b := setupInFlight(t, broker.KindAMQP, context.Background())
	held := b.receive(t, inFlight)
	require.NoError(t, broker.DropAMQPConnection(b.sub))
	// Their deliveries can no longer be answered: the consumer is told,
	// and an ack now goes nowhere (delivery tags are per channel).
	for _, msg := range held {
		select {
		case <-msg.Context().Done():
		case <-time.After(receiveTimeout):
			require.FailNow(t, "context not ended", "message %s of a lost channel", msg.UUID)
		}
		require.True(t, msg.Ack())
	}
	b.requireGivenBack(t, collect(b.ch, backlog, receiveTimeout))
	closeWithin(t, "subscriber", b.sub, closeTimeout)
	requireClosed(t, b.ch, closeTimeout)
}
