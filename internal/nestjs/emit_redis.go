package nestjs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// redisSender publishes each event on the PUB/SUB channel named by its
// pattern, as ClientRedis.emit does. Redis keeps nothing: subscribers
// listening then get it.
type redisSender struct {
	client *redis.Client
	logger *slog.Logger
}

func newRedisSender(ctx context.Context, cfg Config, logger *slog.Logger) (*redisSender, error) {
	client, err := redisClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &redisSender{client: client, logger: logger}, nil
}

// redisClient connects to the Redis cfg.URL names and checks that it
// answers.
func redisClient(ctx context.Context, cfg Config) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// go-redis quotes the URL, which may hold a password.
		return nil, fmt.Errorf("NestJS Redis URL: not a valid redis:// URL")
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Redis: %w", err)
	}
	return client, nil
}

func (s *redisSender) send(ctx context.Context, o outgoing) error {
	n, err := s.client.Publish(ctx, o.pattern, o.packet()).Result()
	if err != nil {
		return fmt.Errorf("publish to Redis channel %s: %w", o.pattern, err)
	}
	if n == 0 {
		s.logger.DebugContext(ctx, "no NestJS consumer subscribed: the event is missed, as on Redis PUB/SUB", "pattern", o.pattern, "message_id", o.messageID)
	}
	return nil
}

func (s *redisSender) close() error { return s.client.Close() }
