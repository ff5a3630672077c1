package worker

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// retryMultiplier and retryJitter shape the backoff: each wait doubles,
// spread by ±20 % so that handlers failing together do not retry together.
const (
	retryMultiplier = 2
	retryJitter     = 0.2
)

// retry retries a failed attempt in place with exponential backoff, up to
// cfg.MaxRetries times. Permanent errors (a poison message) and attempts
// whose message was abandoned (shutdown, ack deadline) are not retried.
func retry(cfg Config) message.HandlerMiddleware {
	return middleware.Retry{
		MaxRetries:          cfg.MaxRetries,
		InitialInterval:     cfg.RetryInitialInterval,
		MaxInterval:         cfg.RetryMaxInterval,
		Multiplier:          retryMultiplier,
		RandomizationFactor: retryJitter,
		// Each attempt gets a fresh context: the timeout of the previous
		// attempt has ended it.
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !isPermanent(p.Err)
		},
	}.Middleware
}
