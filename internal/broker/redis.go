package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"
)

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

func newRedisPublisher(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*publisher, error) {
	client, err := newRedisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Streams are not trimmed (no MAXLEN): a group that is behind must not
	// lose messages. Trim by age outside outboxd if memory matters.
	p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, logger)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("watermill publisher: %w", err)
	}
	// The publisher closes the client.
	return &publisher{transport: p}, nil
}

func newRedisSubscriber(ctx context.Context, cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	client, err := newRedisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:        client,
		ConsumerGroup: group,
		// Each subscriber is a new consumer of the group: what a departed
		// one left pending is claimed by the others after MaxIdleTime.
		Consumer:        group + "-" + watermill.NewShortUUID(),
		MaxIdleTime:     cfg.AckTimeout,
		ClaimInterval:   max(min(cfg.AckTimeout/2, redisClaimIntervalMax), 100*time.Millisecond),
		OldestId:        "0",
		NackResendSleep: redisstream.NoSleep,
		// Otherwise the first XREADGROUP blocks forever on an empty stream
		// and Close leaves it behind.
		DisableIndefiniteInitialBlock: true,
		// Close cancels the context of a reader blocked in XREADGROUP, and
		// closes its client; on any read error the reader sleeps 500 ms
		// before it looks at the closing signal (redisstream subscriber.go,
		// read), outliving Close.
		ShouldStopOnReadErrors: isShutdown,
	}, shutdownIsNotAnError{logger})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("watermill subscriber: %w", err)
	}
	// The subscriber closes the client.
	return &subscriber{transport: s}, nil
}

// isShutdown tells the errors a subscriber's reader gets when it is being
// closed.
func isShutdown(err error) bool {
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, context.Canceled)
}

// shutdownIsNotAnError logs the reader's "stop reading after error" at
// debug level when the error is Close at work.
type shutdownIsNotAnError struct{ watermill.LoggerAdapter }

func (l shutdownIsNotAnError) Error(msg string, err error, fields watermill.LogFields) {
	if isShutdown(err) {
		l.Debug(msg, fields.Add(watermill.LogFields{"error": err.Error()}))
		return
	}
	l.LoggerAdapter.Error(msg, err, fields)
}

func (l shutdownIsNotAnError) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return shutdownIsNotAnError{l.LoggerAdapter.With(fields)}
}
