package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"

	"github.com/outboxd/outboxd/relay"
)

// redisMarshaller is watermill-redisstream's: redisPublisher writes its
// fields and redisSubscriber reads them, as watermill-redisstream's
// subscriber does.
var redisMarshaller = redisstream.DefaultMarshallerUnmarshaller{}

// redisClaimIntervalMax bounds how often a subscriber looks for messages
// that a departed member of its group left unacked.
const redisClaimIntervalMax = 5 * time.Second

func newRedisClient(ctx context.Context, cfg Config) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// go-redis' parse errors may quote the URL, password included.
		return nil, errors.New("parse Config.URL: not a valid redis:// URL")
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", opts.Addr, err)
	}
	return client, nil
}

func newRedisPublisher(ctx context.Context, cfg Config) (*publisher, error) {
	client, err := newRedisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &publisher{transport: &redisPublisher{client: client}}, nil
}

// redisPublisher sends a run's XADDs in one pipeline, each with its own
// answer, in the fields watermill-redisstream's marshaller writes and its
// subscriber reads. Streams are not trimmed (no MAXLEN, as
// watermill-redisstream does without Maxlens): a group that is behind must
// not lose messages. Trim by age outside outboxd if memory matters.
type redisPublisher struct {
	client *redis.Client
}

func (p *redisPublisher) publishRun(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	cmds := make([]*redis.StringCmd, len(run))
	_, _ = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, o := range run {
			values, err := redisMarshaller.Marshal(o.Topic, o.Message)
			if err != nil {
				errs[i] = fmt.Errorf("marshal message %s: %w", o.Message.UUID, err)
				continue
			}
			cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: o.Topic, Values: values})
		}
		return nil
	})
	// Pipelined's error is the first command's; each command has its own.
	for i, cmd := range cmds {
		if cmd != nil {
			errs[i] = cmd.Err()
		}
	}
	return errs
}

func (p *redisPublisher) close() error { return p.client.Close() }

// newRedisSubscriber connects to Redis for a new consumer of the group,
// whose subscriptions hand on up to cfg.InFlight messages before the first
// is answered.
func newRedisSubscriber(ctx context.Context, cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	client, err := newRedisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &redisSubscriber{
		client: client,
		group:  group,
		// Each subscriber is a new consumer of the group: what a departed
		// one left pending is claimed by the others after maxIdle.
		consumer:      group + "-" + watermill.NewShortUUID(),
		maxIdle:       cfg.AckTimeout,
		claimInterval: max(min(cfg.AckTimeout/2, redisClaimIntervalMax), 100*time.Millisecond),
		inFlight:      cfg.InFlight,
		logger:        logger,
	}
	// The subscriber closes the client.
	return &subscriber{transport: s, initialize: s.SubscribeInitialize}, nil
}
