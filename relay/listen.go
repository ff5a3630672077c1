package relay

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/outbox"
)

// listen wakes the pump whenever a transaction that enqueued messages
// commits, over a dedicated LISTEN connection that it reopens with backoff
// when it drops. The poll in the pump covers the gaps.
func (r *Relay) listen(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		listening, err := r.listenOn(ctx)
		if ctx.Err() != nil {
			return
		}
		if listening {
			attempt = 1
		}
		delay := backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
		r.log.Warn("relay: listen connection lost, reconnecting", "error", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
	}
}

// listenOn listens on one connection until it fails or ctx ends.
func (r *Relay) listenOn(ctx context.Context) (listening bool, err error) {
	conn, err := r.connect(ctx, "listen")
	if err != nil {
		return false, err
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{outbox.NotifyChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen on %s: %w", outbox.NotifyChannel, err)
	}
	// Rows may have committed while nobody was listening.
	r.signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		r.signal()
	}
}
