package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/relay"
)

// Why not watermill-nats' publisher and subscriber, only its marshaler
// (headers carry the UUID and the metadata, so other Watermill consumers
// read our messages): its pkg/jetstream calls itself beta, publishes to the
// subject named by the stream's name (which may not contain the topic's
// dots), has no message-id dedup and its grouped consumer puts streams in
// work-queue retention, where two groups cannot both read a topic. Its
// pkg/nats publisher waits for each ack in turn; its subscriber deletes a
// JetStream consumer it created on Unsubscribe, acks every message when
// the callback returns unless nats.ManualAck is set (including those
// Watermill gave up on while closing), and closes its channel while a
// callback may still send on it. So streams and durable consumers are
// provisioned here, natsPublisher publishes asynchronously with Nats-Msg-Id
// = UUID (pkg/nats' TrackMsgId), and natsSubscriber binds to the consumers.
const (
	// natsStreamMaxAge bounds a stream like Kafka's default retention does: a
	// group more than a week behind loses the oldest messages.
	natsStreamMaxAge = 7 * 24 * time.Hour
	// natsDuplicateWindow is how long JetStream remembers a Nats-Msg-Id, so a
	// relay that re-sends a batch after a crash or a takeover within it
	// stores nothing twice.
	natsDuplicateWindow = 2 * time.Minute
	// natsMaxAckPending caps the messages a group holds unacked, or
	// Config.InFlight where that is higher. A subscription hands on
	// InFlight messages at a time and AckWait runs from delivery, so a long
	// queue of delivered messages would expire before its turn and come
	// again.
	natsMaxAckPending = 8
	// natsDeliverPrefix starts the subjects durable push consumers deliver
	// to; topics cannot start with '_', so no stream captures them.
	natsDeliverPrefix = "_outboxd.deliver."
)

// natsAckTimeout bounds the wait for a JetStream acknowledgement that
// PublishBatch's context does not end first (Publish has no context): a
// message sent while the connection was down and never acknowledged fails
// after it rather than holding its run forever.
const natsAckTimeout = 10 * time.Second

// natsMarshaler is watermill-nats' header marshaler, which the subscribers
// unmarshal with: UUID and metadata as headers, the payload as the body.
var natsMarshaler = &wmnats.NATSMarshaler{}

func newNATSPublisher(ctx context.Context, cfg Config) (*publisher, error) {
	nc, err := ConnectNATS(ctx, cfg, "publisher")
	if err != nil {
		return nil, err
	}
	js, err := nc.JetStream(nats.PublishAsyncTimeout(natsAckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	streams := &natsStreams{js: js}
	return &publisher{
		transport: &natsPublisher{nc: nc, js: js, streams: streams},
		prepare:   streams.ensureOnce,
	}, nil
}

// natsPublisher publishes a run asynchronously on one connection and then
// awaits the acknowledgements together. Streams are provisioned by
// ensureStream rather than watermill-nats: its provisioning names the
// stream after the topic, dots and all, and asks the server on every
// Publish.
type natsPublisher struct {
	nc      *nats.Conn
	js      nats.JetStreamContext
	streams *natsStreams
}

func (p *natsPublisher) publishRun(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	acks := make([]nats.PubAckFuture, len(run))
	for i, o := range run {
		msg, err := natsMarshaler.Marshal(o.Topic, o.Message)
		if err != nil {
			errs[i] = fmt.Errorf("marshal message %s: %w", o.Message.UUID, err)
			continue
		}
		var opts []nats.PubOpt
		if o.Message.UUID != "" {
			// JetStream's duplicate window drops a re-send of the same
			// message (watermill-nats' TrackMsgId).
			opts = append(opts, nats.MsgId(o.Message.UUID))
		}
		// A full window of unacknowledged messages waits for acks to free
		// room rather than failing the rest of the run.
		opts = append(opts, nats.StallWait(natsAckTimeout))
		acks[i], errs[i] = p.js.PublishMsgAsync(msg, opts...)
	}
	for i, ack := range acks {
		if ack == nil {
			continue
		}
		select {
		case <-ack.Ok():
		case errs[i] = <-ack.Err():
		case <-ctx.Done():
			// Those left expire after natsAckTimeout.
			errs[i] = ctx.Err()
		}
	}
	for i, err := range errs {
		// A stream deleted by an operator is created again rather than
		// failing every publish.
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrNoStreamResponse) {
			p.streams.forget(run[i].Topic)
		}
	}
	return errs
}

func (p *natsPublisher) close() error {
	p.nc.Close()
	return nil
}

// natsStreams provisions one stream per topic and remembers which exist.
type natsStreams struct {
	js    nats.JetStreamContext
	ready sync.Map // topic → struct{}
}

func (s *natsStreams) ensureOnce(topic string) error {
	if _, ok := s.ready.Load(topic); ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ensure(ctx, topic); err != nil {
		return err
	}
	s.ready.Store(topic, struct{}{})
	return nil
}

func (s *natsStreams) forget(topic string) { s.ready.Delete(topic) }

// ensure creates topic's stream unless it exists, and checks that an
// existing one really carries topic.
func (s *natsStreams) ensure(ctx context.Context, topic string) error {
	name := natsStreamName(topic)
	info, err := s.js.StreamInfo(name, nats.Context(ctx))
	// A create that fails while the stream is still missing is tried
	// again: the server refused it for the moment (seen once in CI, with
	// many streams created and deleted at once), not for good.
	var createErr error
	for attempt := 0; errors.Is(err, nats.ErrStreamNotFound) && attempt < natsStreamCreateAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("stream %s: create: %w (%w)", name, createErr, ctx.Err())
			}
		}
		_, createErr = s.js.AddStream(&nats.StreamConfig{
			Name:       name,
			Subjects:   []string{topic},
			Storage:    nats.FileStorage,
			Retention:  nats.LimitsPolicy,
			MaxAge:     natsStreamMaxAge,
			Duplicates: natsDuplicateWindow,
		}, nats.Context(ctx))
		if createErr == nil {
			return nil
		}
		// Another process may have created it meanwhile: look again.
		info, err = s.js.StreamInfo(name, nats.Context(ctx))
	}
	if err != nil {
		if createErr != nil {
			return fmt.Errorf("stream %s: create: %v; look up: %w", name, createErr, err)
		}
		return fmt.Errorf("stream %s: %w", name, err)
	}
	if !slices.Contains(info.Config.Subjects, topic) {
		return fmt.Errorf("stream %s carries subjects %v, not %s: another topic maps to the same stream name", name, info.Config.Subjects, topic)
	}
	return nil
}

// natsStreamCreateAttempts is how many times ensure tries to create a
// missing stream.
const natsStreamCreateAttempts = 3

func newNATSSubscriber(ctx context.Context, cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	nc, err := ConnectNATS(ctx, cfg, "subscriber "+group)
	if err != nil {
		return nil, err
	}
	js, err := nc.JetStream()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	streams := &natsStreams{js: js}
	return &subscriber{
		transport: &natsSubscriber{
			nc: nc, js: js, group: group, ackWait: cfg.AckTimeout, inFlight: cfg.InFlight, logger: logger,
		},
		prepare: func(ctx context.Context, topic string) error {
			// JetStream API requests wait for as long as ctx lets them.
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := streams.ensure(ctx, topic); err != nil {
				return err
			}
			return ensureNATSConsumer(ctx, js, topic, group, cfg.AckTimeout, max(natsMaxAckPending, cfg.InFlight), cfg.Logger)
		},
	}, nil
}

// ensureNATSConsumer creates the group's durable push consumer on topic's
// stream, or brings an existing one's ack settings in line with ours.
func ensureNATSConsumer(ctx context.Context, js nats.JetStreamContext, topic, group string, ackWait time.Duration, maxAckPending int, log *slog.Logger) error {
	stream := natsStreamName(topic)
	want := &nats.ConsumerConfig{
		Durable:        group,
		Description:    "outboxd consumer group " + group,
		DeliverSubject: natsDeliverPrefix + stream + "." + group,
		DeliverGroup:   group,
		DeliverPolicy:  nats.DeliverAllPolicy,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxAckPending:  maxAckPending,
	}
	info, err := js.ConsumerInfo(stream, group, nats.Context(ctx))
	if errors.Is(err, nats.ErrConsumerNotFound) {
		if _, err = js.AddConsumer(stream, want, nats.Context(ctx)); err == nil {
			return nil
		}
		info, err = js.ConsumerInfo(stream, group, nats.Context(ctx))
	}
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", group, stream, err)
	}
	if info.Config.AckWait == want.AckWait && info.Config.MaxAckPending == want.MaxAckPending {
		return nil
	}
	update := info.Config
	update.AckWait, update.MaxAckPending = want.AckWait, want.MaxAckPending
	if _, err := js.UpdateConsumer(stream, &update, nats.Context(ctx)); err != nil {
		return fmt.Errorf("update consumer %s on stream %s: %w", group, stream, err)
	}
	log.Info("updated consumer ack settings", "component", "broker", "stream", stream, "group", group, "ack_wait", ackWait, "max_ack_pending", maxAckPending)
	return nil
}
