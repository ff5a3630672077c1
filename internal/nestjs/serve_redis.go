package nestjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// redisListener takes requests on the PUB/SUB channel
// {"cmd":"get_user_by_id"} and publishes each reply on
// {"cmd":"get_user_by_id"}.reply, where ClientRedis matches it by id, as
// ServerRedis does. go-redis subscribes again after a lost connection.
type redisListener struct {
	client *redis.Client
	ps     *redis.PubSub
	ws     *workers
	done   chan struct{}
}

// redisReplyChannel is where replies go: the request channel plus .reply.
const redisReplyChannel = PatternGetUserByID + ".reply"

func listenRedis(ctx context.Context, cfg Config, serve func([]byte) replyPacket, log *slog.Logger) (*redisListener, error) {
	client, err := redisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ps := client.Subscribe(ctx, PatternGetUserByID)
	// The first reply is the subscription's confirmation.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		_ = client.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", PatternGetUserByID, err)
	}
	l := &redisListener{client: client, ps: ps, ws: newWorkers(cfg.Concurrency), done: make(chan struct{})}
	msgs := ps.Channel()
	go func() {
		defer close(l.done)
		for m := range msgs {
			l.ws.do(func() {
				// Detached from ctx like the lookup: a reply in hand is sent.
				if err := client.Publish(context.Background(), redisReplyChannel, encode(serve([]byte(m.Payload)), true)).Err(); err != nil {
					log.Warn("NestJS reply not sent", "error", err)
				}
			})
		}
	}()
	return l, nil
}

func (l *redisListener) stop() error {
	err := l.ps.Close()
	<-l.done
	l.ws.wait()
	if cerr := l.client.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
