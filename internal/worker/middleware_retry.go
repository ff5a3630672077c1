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
//
// The first attempt runs outside Watermill's Retry, which sets up an
// exponential backoff with its clock for every message; only a failed
// attempt enters it, and Retry takes that failure as its own first attempt,
// so the retries follow Retry's schedule exactly.
func retry(cfg Config) message.HandlerMiddleware {
	retrying := middleware.Retry{
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
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context() // the attempt's own context ends with it
			produced, err := h(msg)
			if err == nil || isPermanent(err) {
				return produced, err
			}
			msg.SetContext(ctx)
			attempted := false
			return retrying.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if !attempted {
					attempted = true
					return produced, err
				}
				return h(msg)
			})(msg)
		}
	}
}
