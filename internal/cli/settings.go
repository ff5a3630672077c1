package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/outboxd/outboxd/internal/api"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/prune"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/outbox/inbox"
	"github.com/outboxd/outboxd/relay"
)

// checkKeep validates a retention setting: 0 (keep forever) or at least
// minimum. Its error names the variable, so start-up fails with one line.
func checkKeep(env string, d, minimum time.Duration) error {
	if d != 0 && d < minimum {
		return fmt.Errorf("%s=%s: must be 0 (keep forever) or at least %s", env, d, minimum)
	}
	return nil
}

// pruner returns the loop that keeps table bounded by deleting rows older
// than olderThan; nil when olderThan is 0 (keep everything).
func pruner(logger *slog.Logger, table string, olderThan time.Duration,
	del func(ctx context.Context, olderThan time.Duration) (int64, error),
) func(context.Context) error {
	if olderThan == 0 {
		return nil
	}
	t := prune.Task{Table: table, OlderThan: olderThan, Delete: del}
	return func(ctx context.Context) error { return prune.Run(ctx, logger, t) }
}

// keyPruner prunes expired idempotency keys: the API's.
func keyPruner(logger *slog.Logger, pool *pgxpool.Pool, ttl time.Duration) func(context.Context) error {
	return pruner(logger, "idempotency_keys", ttl,
		func(ctx context.Context, d time.Duration) (int64, error) {
			return signup.PruneIdempotencyKeys(ctx, pool, d)
		})
}

// inboxPruner prunes old inbox rows: the worker's.
func inboxPruner(logger *slog.Logger, pool *pgxpool.Pool, retention time.Duration) func(context.Context) error {
	return pruner(logger, "inbox", retention,
		func(ctx context.Context, d time.Duration) (int64, error) { return inbox.Prune(ctx, pool, d) })
}

// The values of OUTBOX_NOTIFY.
const (
	notifyOn  = "on"
	notifyOff = "off"
)

func (f APIFlags) validate() error {
	var timeouts, notify error
	if f.ProfileTimeout >= f.RequestTimeout {
		// The request would end first: a 503 instead of the profile's 504.
		timeouts = fmt.Errorf("PROFILE_REQUEST_TIMEOUT=%s must be shorter than REQUEST_TIMEOUT=%s", f.ProfileTimeout, f.RequestTimeout)
	}
	if f.OutboxNotify != "" && f.OutboxNotify != notifyOn && f.OutboxNotify != notifyOff {
		notify = fmt.Errorf("OUTBOX_NOTIFY=%s: use %s or %s", f.OutboxNotify, notifyOn, notifyOff)
	}
	return errors.Join(timeouts, notify, checkKeep("IDEMPOTENCY_KEY_TTL", f.IdempotencyKeyTTL, signup.MinKeyTTL))
}

func (f RelayFlags) validate() error {
	if _, err := relay.ParseCapture(f.Capture); err != nil {
		return fmt.Errorf("RELAY_CAPTURE=%s: %w", f.Capture, err)
	}
	return nil
}

func (f WorkerFlags) validate() error {
	var errs []error
	if f.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("WORKER_CONCURRENCY=%d: must be at least 1", f.Concurrency))
	}
	if f.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("WORKER_BATCH_SIZE=%d: must be at least 1", f.BatchSize))
	}
	if f.BatchWait < 0 {
		errs = append(errs, fmt.Errorf("WORKER_BATCH_WAIT=%s: must not be negative", f.BatchWait))
	}
	return errors.Join(append(errs, checkKeep("INBOX_RETENTION", f.InboxRetention, inbox.MinPruneAge), f.NestJSFlags.validate(f.Handlers))...)
}

// Validate is called by kong after parsing: bad settings fail before
// anything connects.
func (c *APICmd) Validate() error { return c.APIFlags.validate() }

// Validate is called by kong after parsing.
func (c *RelayCmd) Validate() error { return c.RelayFlags.validate() }

// Validate is called by kong after parsing.
func (c *WorkerCmd) Validate() error { return c.WorkerFlags.validate() }

// Validate is called by kong after parsing.
func (c *DevCmd) Validate() error {
	return errors.Join(c.APIFlags.validate(), c.RelayFlags.validate(), c.WorkerFlags.validate())
}

// appendIf appends fn to fns unless it is nil.
func appendIf(fns []func(context.Context) error, fn func(context.Context) error) []func(context.Context) error {
	if fn == nil {
		return fns
	}
	return append(fns, fn)
}

// wake maps OUTBOX_NOTIFY to how the API wakes the relays: on is a
// coalesced pg_notify after each commit, off none.
func wake(notify string) api.Wake {
	if notify == notifyOff {
		return api.WakeNone
	}
	return api.WakeCoalesced
}
