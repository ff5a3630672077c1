package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Whereabouts is where a message is now, by its id.
type Whereabouts struct {
	ID uuid.UUID
	// Outbox are its rows in the outbox: pending, or published and kept for
	// the relay's retention. A replayed message can have both.
	Outbox []OutboxRow
	// DeadLetters are its dead letters, the relay's and the handlers'.
	DeadLetters []Letter
	// Handled are the handlers that processed it, by their inbox.
	Handled []Handled
}

// OutboxRow is one outbox row of a message.
type OutboxRow struct {
	ID          int64
	Topic       string
	Key         string
	CreatedAt   time.Time
	PublishedAt *time.Time
	Attempts    int
	LastError   *string
	// NextAttempt is when the relay retries it after a failure, nil when
	// it need not wait.
	NextAttempt *time.Time
}

// Handled is one handler's inbox row of a message.
type Handled struct {
	Handler     string
	ProcessedAt time.Time
}

// Nowhere is whether the message was found in no table.
func (w Whereabouts) Nowhere() bool {
	return len(w.Outbox) == 0 && len(w.DeadLetters) == 0 && len(w.Handled) == 0
}

// locate finds message id in every table that may hold it. The outbox has
// no index on message_id, on purpose (its insert path pays for the primary
// key only): the pending outbox is small, and this scans it.
func (c *Console) locate(ctx context.Context, id uuid.UUID) (Whereabouts, error) {
	w := Whereabouts{ID: id}
	rows, err := c.pool.Query(ctx, `
SELECT id, topic, key, created_at, published_at, attempts, last_error,
       CASE WHEN isfinite(next_attempt_at) THEN next_attempt_at END
FROM outbox WHERE message_id = $1 ORDER BY id`, id)
	if err != nil {
		return w, fmt.Errorf("look up the outbox: %w", err)
	}
	w.Outbox, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxRow, error) {
		var o OutboxRow
		err := r.Scan(&o.ID, &o.Topic, &o.Key, &o.CreatedAt, &o.PublishedAt, &o.Attempts, &o.LastError, &o.NextAttempt)
		return o, err
	})
	if err != nil {
		return w, fmt.Errorf("look up the outbox: %w", err)
	}
	w.DeadLetters, _, err = c.store.list(ctx, Filter{MessageID: id}, Cursor{}, 100)
	if err != nil {
		return w, fmt.Errorf("look up the dead letters: %w", err)
	}
	rows, err = c.pool.Query(ctx, `SELECT handler, processed_at FROM inbox WHERE message_id = $1 ORDER BY handler`, id)
	if err != nil {
		return w, fmt.Errorf("look up the inbox: %w", err)
	}
	w.Handled, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Handled])
	if err != nil {
		return w, fmt.Errorf("look up the inbox: %w", err)
	}
	return w, nil
}

// messagePage is the lookup page's content.
type messagePage struct {
	Query  string
	Found  *Whereabouts
	Notice string
}

func (c *Console) serveMessage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := messagePage{Query: q.Get("id"), Notice: notice(q)}
	if page.Query != "" {
		id, err := uuid.Parse(page.Query)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "message", "Message lookup", page)
			return
		}
		found, err := c.locate(r.Context(), id)
		if err != nil {
			c.logger.ErrorContext(r.Context(), "console: look a message up", "error", err)
			c.fail(w, r, http.StatusInternalServerError, "Cannot look the message up: "+oneLine(err.Error()))
			return
		}
		page.Found = &found
	}
	c.render(w, r, http.StatusOK, "message", "Message lookup", page)
}
