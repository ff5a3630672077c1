package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestPostgresSubscriptionEndingMovesTheOffsetPastTheAckedPrefix checks
// that a PostgreSQL subscription with Config.InFlight set that ends with
// its batch partly acked moves the group's offset past the messages acked
// in offset order, as watermill-sql does, and no further: what comes after
// the first one unanswered comes again, an acked one included, and at
// once. TestSubscriptionHandsOnInFlight checks the rest of what InFlight
// means.
func TestPostgresSubscriptionEndingMovesTheOffsetPastTheAckedPrefix(t *testing.T) {
	t.Parallel()
	const prefix = 5
	b := setupInFlight(t, broker.KindPostgres, context.Background())
	held := b.receive(t, inFlight)
	for i, msg := range held {
		if i != prefix {
			require.True(t, msg.Ack())
		}
	}
	// The acks freed slots: the batch goes on behind the one unanswered.
	requireInOrder(t, b.msgs[inFlight:2*inFlight-1], collect(b.ch, inFlight-1, receiveTimeout))
	closeWithin(t, "subscriber", b.sub, closeTimeout)
	requireClosed(t, b.ch, closeTimeout)
	require.Equal(t, offsetOf(t, b, prefix-1), groupOffset(t, b), "offset of group %s", b.group)

	_, ch := subscribe(t, b.cfg, b.group, b.topic)
	requireInOrder(t, b.msgs[prefix:], collect(ch, backlog-prefix, receiveTimeout))
	requireOffsetReaches(t, b.cfg, b.topic, b.group, offsetOf(t, b, backlog-1))
}

// TestPostgresSubscriptionHandsOnAgainWhatIsNotAnsweredInTime checks that
// a message a PostgreSQL subscription handed on and that stays unanswered
// for Config.AckTimeout counts as nacked: its context ends and a copy comes
// again, while the others go on.
func TestPostgresSubscriptionHandsOnAgainWhatIsNotAnsweredInTime(t *testing.T) {
	t.Parallel()
	cfg := transportConfig(t, broker.KindPostgres)
	cfg.InFlight = 2
	cfg.AckTimeout = 500 * time.Millisecond
	group := "deadline"
	topic := uniqueTopic(t, cfg, group)
	_, ch := subscribe(t, cfg, group, topic)
	msgs := []*message.Message{sample(0, "a"), sample(1, "b"), sample(2, "c")}
	publishAll(t, newPublisher(t, cfg), topic, msgs, len(msgs))

	late := next(t, ch, receiveTimeout)
	requireIntact(t, msgs[0], late)
	start := time.Now()
	requireInOrder(t, msgs[1:], collect(ch, 2, receiveTimeout))
	again := next(t, ch, receiveTimeout)
	requireIntact(t, msgs[0], again)
	require.GreaterOrEqual(t, time.Since(start), cfg.AckTimeout)
	select {
	case <-late.Context().Done():
	default:
		require.FailNow(t, "the late message's context is still on")
	}
	require.True(t, again.Ack())
	requireOffsetReaches(t, cfg, topic, group, messageOffset(t, cfg, topic, msgs[2].UUID))
}

// requireOffsetAtEnd fails unless b's group's offset is its topic's last
// message: every message of its batches acked.
func requireOffsetAtEnd(t *testing.T, b *inFlightBundle) {
	t.Helper()
	require.Equal(t, offsetOf(t, b, backlog-1), groupOffset(t, b), "offset of group %s", b.group)
}

// offsetOf is the offset of b's i-th message in its topic's table.
func offsetOf(t *testing.T, b *inFlightBundle, i int) int64 {
	t.Helper()
	return messageOffset(t, b.cfg, b.topic, b.msgs[i].UUID)
}

// groupOffset is the offset b's group acked last on its topic.
func groupOffset(t *testing.T, b *inFlightBundle) int64 {
	t.Helper()
	return groupOffsetOf(t, b.cfg, b.topic, b.group)
}

// messageOffset is the offset of message id in topic's table, as
// watermill-sql names it.
func messageOffset(t *testing.T, cfg broker.Config, topic, id string) int64 {
	t.Helper()
	var offset int64
	queryRow(t, cfg, &offset, `SELECT "offset" FROM "watermill_`+topic+`" WHERE uuid = $1`, id)
	return offset
}

// groupOffsetOf is the offset group acked last on topic, in watermill-sql's
// offsets table.
func groupOffsetOf(t *testing.T, cfg broker.Config, topic, group string) int64 {
	t.Helper()
	var offset int64
	queryRow(t, cfg, &offset, `SELECT offset_acked FROM "watermill_offsets_`+topic+`" WHERE consumer_group = $1`, group)
	return offset
}

// requireOffsetReaches fails unless group's offset on topic reaches want
// within receiveTimeout: the batch is committed once its last ack is in,
// after the subscription hands it on.
func requireOffsetReaches(t *testing.T, cfg broker.Config, topic, group string, want int64) {
	t.Helper()
	var got int64
	deadline := time.Now().Add(receiveTimeout)
	for {
		err := scanRow(cfg, &got, `SELECT offset_acked FROM "watermill_offsets_`+topic+`" WHERE consumer_group = $1`, group)
		require.NoError(t, err)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "offset not moved", "group %s at offset %d, want %d within %s", group, got, want, receiveTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queryRow scans the one row query returns on cfg's database into dest.
func queryRow(t *testing.T, cfg broker.Config, dest any, query string, args ...any) {
	t.Helper()
	require.NoError(t, scanRow(cfg, dest, query, args...))
}

// scanRow scans the one row query returns on cfg's database into dest.
func scanRow(cfg broker.Config, dest any, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return conn.QueryRow(ctx, query, args...).Scan(dest)
}
