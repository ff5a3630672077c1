package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Position is where a newest-first listing (Filter.NewestFirst) stopped:
// the failure time and ID of the last dead letter it returned.
type Position struct {
	// FailedAt is the dead letter's FailedAt.
	FailedAt time.Time
	// ID is the dead letter's ID.
	ID int64
}

// PositionOf is the position of d, to list what comes after it.
func PositionOf(d DeadLetter) Position { return Position{FailedAt: d.FailedAt, ID: d.ID} }

// Count returns how many dead letters f selects (its paging fields aside).
func Count(ctx context.Context, db DB, f Filter) (int64, error) {
	var w where
	f.match(&w)
	var n int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM dead_letters`+w.sql(), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// PurgeMatching deletes for good every dead letter f selects (its paging
// fields aside), in one statement, and returns how many it deleted. Give
// f.Until the time the operator counted them at, so that a dead letter
// arriving meanwhile is not deleted unseen.
func PurgeMatching(ctx context.Context, db DB, f Filter) (int64, error) {
	var w where
	f.match(&w)
	tag, err := db.Exec(ctx, `DELETE FROM dead_letters`+w.sql(), w.args...)
	if err != nil {
		return 0, fmt.Errorf("purge matching dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// match adds f's selection (not its paging) to w.
func (f Filter) match(w *where) {
	if f.Handler != "" {
		w.add("handler = " + w.arg(f.Handler))
	}
	if f.MessageID != uuid.Nil {
		w.add("message_id = " + w.arg(f.MessageID))
	}
	if f.Topic != "" {
		w.add("topic = " + w.arg(f.Topic))
	}
	if !f.Since.IsZero() {
		w.add("failed_at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("failed_at < " + w.arg(f.Until))
	}
}

// where collects the conditions of a statement with their arguments, so
// that only the conditions a filter sets reach the planner.
type where struct {
	conds []string
	args  []any
}

// arg adds v as an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// sql is the WHERE clause, empty without conditions.
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return "\nWHERE " + strings.Join(w.conds, "\n  AND ")
}
