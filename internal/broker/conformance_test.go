package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// receiveTimeout bounds every wait for messages; generous because the
// machine is shared.
const receiveTimeout = 20 * time.Second

// closeTimeout is how long Close may take: a relay or worker shutting down
// must not hang on its broker.
const closeTimeout = 5 * time.Second

// TestConformance runs one body against every transport, like Watermill's
// own pubsub/tests suite, for the guarantees the relay and worker rely on.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, tr := range transports() {
		t.Run(string(tr.kind), func(t *testing.T) {
			t.Parallel()
			t.Run("EveryGroupGetsEveryMessageIntactInKeyOrder", func(t *testing.T) {
				t.Parallel()
				testFanOut(t, tr.config(t))
			})
			t.Run("MembersOfAGroupShareItsMessages", func(t *testing.T) {
				t.Parallel()
				testMembersShare(t, tr.config(t))
			})
			t.Run("NackedMessageIsRedelivered", func(t *testing.T) {
				t.Parallel()
				testNackRedelivers(t, tr.config(t))
			})
			t.Run("GroupResumesAfterItsSubscriberCloses", func(t *testing.T) {
				t.Parallel()
				testGroupResumes(t, tr.config(t))
			})
		})
	}
}

// subscribe starts a subscriber of group on topic; AMQP queues exist only
// from here on, so tests subscribe before they publish.
func subscribe(t *testing.T, cfg broker.Config, group, topic string) (message.Subscriber, <-chan *message.Message) {
	t.Helper()
	ctx := context.Background()
	sub, err := broker.NewSubscriber(ctx, cfg, group)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	return sub, ch
}

func newPublisher(t *testing.T, cfg broker.Config) message.Publisher {
	t.Helper()
	pub, err := broker.NewPublisher(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// collect acks and returns the messages of ch in the order they come,
// until n have come or d has passed.
func collect(ch <-chan *message.Message, n int, d time.Duration) []*message.Message {
	var got []*message.Message
	deadline := time.After(d)
	for len(got) < n {
		select {
		case msg, ok := <-ch:
			if !ok {
				return got
			}
			msg.Ack()
			got = append(got, msg)
		case <-deadline:
			return got
		}
	}
	return got
}

// publishAll publishes msgs in calls of up to batch messages, as the relay
// does with a key's rows.
func publishAll(t *testing.T, pub message.Publisher, topic string, msgs []*message.Message, batch int) {
	t.Helper()
	for start := 0; start < len(msgs); start += batch {
		end := min(start+batch, len(msgs))
		require.NoError(t, pub.Publish(topic, msgs[start:end]...))
	}
}

func testFanOut(t *testing.T, cfg broker.Config) {
	const (
		n    = 500
		keys = 7
	)
	groups := []string{"alpha", "beta"}
	topic := uniqueTopic(t, cfg, groups...)
	subs := make([]message.Subscriber, len(groups))
	chans := make([]<-chan *message.Message, len(groups))
	for i, g := range groups {
		subs[i], chans[i] = subscribe(t, cfg, g, topic)
	}
	pub := newPublisher(t, cfg)

	sent := make(map[string]*message.Message, n)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = sample(i, fmt.Sprintf("key-%d", i%keys))
		sent[msgs[i].UUID] = msgs[i]
	}
	start := time.Now()
	publishAll(t, pub, topic, msgs, 50)
	t.Logf("published %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	closeWithin(t, "publisher", pub, closeTimeout)

	// Groups are read at once, as a worker's handlers run: on postgres a
	// group holding a batch holds back the transaction horizon every other
	// group reads behind.
	received := make([]chan []*message.Message, len(groups))
	for i := range groups {
		received[i] = make(chan []*message.Message, 1)
		go func() { received[i] <- collect(chans[i], n, receiveTimeout) }()
	}
	for i, g := range groups {
		got := <-received[i]
		require.Len(t, got, n, "group %s: messages received within %s", g, receiveTimeout)
		seen := make(map[string]bool, n)
		lastSeq := make(map[string]int, keys)
		for _, msg := range got {
			want, ok := sent[msg.UUID]
			require.True(t, ok, "group %s: unknown message %q", g, msg.UUID)
			require.False(t, seen[msg.UUID], "group %s: %s delivered twice with no failure", g, msg.UUID)
			seen[msg.UUID] = true
			requireIntact(t, want, msg)

			// With one member and no nack, every transport keeps a key's
			// publish order.
			key := msg.Metadata.Get("key")
			seq, err := strconv.Atoi(msg.Metadata.Get("seq"))
			require.NoError(t, err)
			if last, ok := lastSeq[key]; ok {
				require.Greater(t, seq, last, "group %s: key %s out of order", g, key)
			}
			lastSeq[key] = seq
		}
	}
	t.Logf("both groups received %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	for i, g := range groups {
		closeWithin(t, "subscriber "+g, subs[i], closeTimeout)
		requireClosed(t, chans[i], closeTimeout)
	}
}

func testMembersShare(t *testing.T, cfg broker.Config) {
	const n = 100
	topic := uniqueTopic(t, cfg, "shared")
	members := make([]message.Subscriber, 2)
	chans := make([]<-chan *message.Message, 2)
	for i := range members {
		members[i], chans[i] = subscribe(t, cfg, "shared", topic)
	}
	pub := newPublisher(t, cfg)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = sample(i, fmt.Sprintf("key-%d", i%5))
	}
	publishAll(t, pub, topic, msgs, 10)
	closeWithin(t, "publisher", pub, closeTimeout)

	// One merged stream: the members take whatever the broker hands them.
	merged := make(chan *message.Message)
	done := make(chan struct{})
	defer close(done)
	for _, ch := range chans {
		go func() {
			for msg := range ch {
				select {
				case merged <- msg:
				case <-done:
					msg.Nack()
				}
			}
		}()
	}
	seen := make(map[string]bool, n)
	for len(seen) < n {
		got := next(t, merged, receiveTimeout)
		require.False(t, seen[got.UUID], "%s went to two members of one group", got.UUID)
		seen[got.UUID] = true
		require.True(t, got.Ack())
	}
	for i, m := range members {
		closeWithin(t, fmt.Sprintf("member %d", i), m, closeTimeout)
	}
}

func testNackRedelivers(t *testing.T, cfg broker.Config) {
	topic := uniqueTopic(t, cfg, "nacker")
	sub, ch := subscribe(t, cfg, "nacker", topic)
	pub := newPublisher(t, cfg)

	first, sentinel := sample(1, "k"), sample(2, "k")
	require.NoError(t, pub.Publish(topic, first))
	for attempt := 1; attempt <= 3; attempt++ {
		got := next(t, ch, receiveTimeout)
		requireIntact(t, first, got)
		if attempt < 3 {
			require.True(t, got.Nack())
			continue
		}
		require.True(t, got.Ack())
	}
	// Once acked it stays acked: the next delivery is the next message.
	require.NoError(t, pub.Publish(topic, sentinel))
	requireIntact(t, sentinel, next(t, ch, receiveTimeout))

	closeWithin(t, "publisher", pub, closeTimeout)
	closeWithin(t, "subscriber", sub, closeTimeout)
	requireClosed(t, ch, closeTimeout)
}

func testGroupResumes(t *testing.T, cfg broker.Config) {
	const (
		n     = 60
		acked = 20
	)
	// Short, so that brokers which redeliver on a timer (NATS, Redis) hand
	// over what the first subscriber held quickly.
	cfg.AckTimeout = 2 * time.Second
	topic := uniqueTopic(t, cfg, "durable")
	first, firstCh := subscribe(t, cfg, "durable", topic)
	pub := newPublisher(t, cfg)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = sample(i, "k")
	}
	publishAll(t, pub, topic, msgs, 10)
	closeWithin(t, "publisher", pub, closeTimeout)

	ackedIDs := make(map[string]bool, acked)
	for range acked {
		got := next(t, firstCh, receiveTimeout)
		require.False(t, ackedIDs[got.UUID])
		ackedIDs[got.UUID] = true
		require.True(t, got.Ack())
	}
	// Hold one without an answer: closing must give it back to the group,
	// not ack it and not drop it.
	held := next(t, firstCh, receiveTimeout)
	require.False(t, ackedIDs[held.UUID], "an acked message came again")
	closeWithin(t, "first subscriber", first, closeTimeout)
	requireClosed(t, firstCh, closeTimeout)

	second, secondCh := subscribe(t, cfg, "durable", topic)
	pending := make(map[string]bool, n-acked)
	for _, m := range msgs {
		if !ackedIDs[m.UUID] {
			pending[m.UUID] = true
		}
	}
	require.True(t, pending[held.UUID])
	start := time.Now()
	for len(pending) > 0 {
		got := next(t, secondCh, receiveTimeout)
		// Every transport acks a message before delivering the next one, so
		// the first subscriber's acks all stuck: the group resumes after
		// them rather than from the start.
		require.False(t, ackedIDs[got.UUID], "acked message %s came again: the group lost its place", got.UUID)
		delete(pending, got.UUID)
		require.True(t, got.Ack())
	}
	t.Logf("second subscriber got the %d pending messages in %s", n-acked, time.Since(start).Round(time.Millisecond))
	closeWithin(t, "second subscriber", second, closeTimeout)
	requireClosed(t, secondCh, closeTimeout)
}
