// Package status reports the health of an outboxd deployment from its
// database: the outbox backlog, dead letters and the active relay.
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Beginner starts transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Report is a snapshot of the deployment.
type Report struct {
	// At is when the snapshot was taken (database clock).
	At time.Time `json:"at"`
	// Backlog counts the rows not yet published, per topic.
	Backlog []TopicBacklog `json:"backlog"`
	// Pending is the total of Backlog.
	Pending int64 `json:"pending"`
	// OldestPendingAgeSeconds is the age of the oldest unpublished row, 0
	// when there is none.
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
	// DeadLetters counts dead letters per handler; the relay's own (messages
	// the broker rejected) are under handler "relay".
	DeadLetters []HandlerDeadLetters `json:"dead_letters"`
	// Relay is the active relay, nil when none has ever led.
	Relay *ActiveRelay `json:"relay"`
}

// TopicBacklog is the unpublished rows of one topic.
type TopicBacklog struct {
	Topic                   string  `json:"topic"`
	Pending                 int64   `json:"pending"`
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
}

// HandlerDeadLetters is the dead letters of one handler.
type HandlerDeadLetters struct {
	Handler string `json:"handler"`
	Count   int64  `json:"count"`
}

// ActiveRelay is the relay holding the leader lock, by its last heartbeat.
type ActiveRelay struct {
	Name                string    `json:"name"`
	Since               time.Time `json:"since"`
	HeartbeatAt         time.Time `json:"heartbeat_at"`
	HeartbeatAgeSeconds float64   `json:"heartbeat_age_seconds"`
}

// RelayHandler is the handler name under which the relay's dead letters are
// counted.
const RelayHandler = "relay"

// Collect reads a Report in one repeatable-read snapshot, so its figures
// agree with each other.
func Collect(ctx context.Context, db Beginner) (Report, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("status: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		return Report{}, fmt.Errorf("status: snapshot: %w", err)
	}
	var r Report
	if err := tx.QueryRow(ctx, "SELECT now()").Scan(&r.At); err != nil {
		return Report{}, fmt.Errorf("status: clock: %w", err)
	}
	if err := backlog(ctx, tx, &r); err != nil {
		return Report{}, err
	}
	if err := deadLetters(ctx, tx, &r); err != nil {
		return Report{}, err
	}
	if err := activeRelay(ctx, tx, &r); err != nil {
		return Report{}, err
	}
	return r, nil
}

func backlog(ctx context.Context, tx pgx.Tx, r *Report) error {
	rows, err := tx.Query(ctx, `
		SELECT topic, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM outbox WHERE published_at IS NULL
		GROUP BY topic ORDER BY topic`)
	if err != nil {
		return fmt.Errorf("status: backlog: %w", err)
	}
	r.Backlog, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (TopicBacklog, error) {
		var b TopicBacklog
		err := row.Scan(&b.Topic, &b.Pending, &b.OldestPendingAgeSeconds)
		return b, err
	})
	if err != nil {
		return fmt.Errorf("status: backlog: %w", err)
	}
	r.Backlog = nonNil(r.Backlog)
	for _, b := range r.Backlog {
		r.Pending += b.Pending
		r.OldestPendingAgeSeconds = max(r.OldestPendingAgeSeconds, b.OldestPendingAgeSeconds)
	}
	return nil
}

func deadLetters(ctx context.Context, tx pgx.Tx, r *Report) error {
	rows, err := tx.Query(ctx, `
		SELECT handler, count(*) FROM dead_letters GROUP BY handler
		UNION ALL
		SELECT $1, count(*) FROM outbox_dead_letters HAVING count(*) > 0
		ORDER BY 1`, RelayHandler)
	if err != nil {
		return fmt.Errorf("status: dead letters: %w", err)
	}
	r.DeadLetters, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (HandlerDeadLetters, error) {
		var d HandlerDeadLetters
		err := row.Scan(&d.Handler, &d.Count)
		return d, err
	})
	if err != nil {
		return fmt.Errorf("status: dead letters: %w", err)
	}
	r.DeadLetters = nonNil(r.DeadLetters)
	return nil
}

func activeRelay(ctx context.Context, tx pgx.Tx, r *Report) error {
	var a ActiveRelay
	err := tx.QueryRow(ctx, `
		SELECT name, since, heartbeat_at, EXTRACT(EPOCH FROM now() - heartbeat_at)::float8
		FROM relay_leader ORDER BY heartbeat_at DESC LIMIT 1`).
		Scan(&a.Name, &a.Since, &a.HeartbeatAt, &a.HeartbeatAgeSeconds)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("status: active relay: %w", err)
	}
	r.Relay = &a
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
