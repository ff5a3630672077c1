package broker_test

import (
	"maps"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestNATSStreamPerTopicWithMessageIDDedup checks the JetStream mapping: a
// file stream named after the topic holds its subject, each message carries
// Nats-Msg-Id = its UUID, and a re-send of the same UUID (a relay retrying a
// batch after a crash) is stored once and delivered once.
func TestNATSStreamPerTopicWithMessageIDDedup(t *testing.T) {
	t.Parallel()
	natsURL := startNATS(t)
	cfg := testConfig(broker.KindNATS, natsURL)
	topic := "user.created"
	sub, ch := subscribe(t, cfg, "audit", topic)
	pub := newPublisher(t, cfg)

	first, second := sample(1, "u1"), sample(2, "u1")
	require.NoError(t, pub.Publish(topic, first))
	resent := message.NewMessage(first.UUID, first.Payload)
	resent.Metadata = maps.Clone(first.Metadata)
	require.NoError(t, pub.Publish(topic, resent, second))

	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	info, err := js.StreamInfo("user_created")
	require.NoError(t, err)
	require.Equal(t, []string{topic}, info.Config.Subjects)
	require.Equal(t, nats.FileStorage, info.Config.Storage)
	require.Equal(t, uint64(2), info.State.Msgs, "the re-sent message was stored twice")
	stored, err := js.GetMsg("user_created", 1)
	require.NoError(t, err)
	require.Equal(t, first.UUID, stored.Header.Get(nats.MsgIdHdr))
	require.Equal(t, topic, stored.Subject)

	// Delivered in order, the duplicate nowhere in between.
	for _, want := range []*message.Message{first, second} {
		got := next(t, ch, receiveTimeout)
		requireIntact(t, want, got)
		got.Ack()
	}
	// Watermill sends an ack after Ack returns: wait for it before closing,
	// or Close may win the race and the message come again.
	require.Eventually(t, func() bool {
		consumer, err := js.ConsumerInfo("user_created", "audit")
		return err == nil && consumer.AckFloor.Consumer == 2
	}, receiveTimeout, 10*time.Millisecond)
	closeWithin(t, "subscriber", sub, closeTimeout)

	consumer, err := js.ConsumerInfo("user_created", "audit")
	require.NoError(t, err, "the group's durable consumer outlives its subscriber")
	require.Equal(t, "audit", consumer.Config.DeliverGroup)
	require.Equal(t, uint64(2), consumer.AckFloor.Consumer)
}
