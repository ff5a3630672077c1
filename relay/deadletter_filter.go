package relay

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DeadLetterFilter selects dead letters by what an operator knows of them.
// Its zero value selects them all.
type DeadLetterFilter struct {
	// Topic keeps the dead letters of this topic. Defaults to "" (any).
	Topic string
	// Key keeps the dead letters of this ordering key. Defaults to "" (any).
	Key string
	// MessageID keeps the dead letters of this message. Defaults to the
	// zero UUID (any).
	MessageID uuid.UUID
	// Since keeps the dead letters that failed at or after it. Defaults to
	// the zero time (no lower bound).
	Since time.Time
	// Until keeps the dead letters that failed before it. Defaults to the
	// zero time (no upper bound).
	Until time.Time
}

// DeadLetterPosition is where a newest-first listing stopped: the failure
// time and ID of the last dead letter it returned.
type DeadLetterPosition struct {
	// FailedAt is the dead letter's FailedAt.
	FailedAt time.Time
	// ID is the dead letter's ID.
	ID int64
}

// Position is the position of d, to list what comes after it.
func (d DeadLetter) Position() DeadLetterPosition {
	return DeadLetterPosition{FailedAt: d.FailedAt, ID: d.ID}
}

// CountDeadLetters returns how many dead letters f selects.
func CountDeadLetters(ctx context.Context, db DB, f DeadLetterFilter) (int64, error) {
	var c conditions
	f.add(&c)
	rows, err := db.Query(ctx, `SELECT count(*) FROM outbox_dead_letters`+c.where(), c.args...)
	if err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("count dead letters: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// PurgeMatchingDeadLetters deletes for good every dead letter f selects, in
// one statement, and returns how many it deleted. Give f.Until the time the
// operator counted them at, so that a dead letter arriving meanwhile is not
// deleted unseen.
func PurgeMatchingDeadLetters(ctx context.Context, db DB, f DeadLetterFilter) (int64, error) {
	var c conditions
	f.add(&c)
	tag, err := db.Exec(ctx, `DELETE FROM outbox_dead_letters`+c.where(), c.args...)
	if err != nil {
		return 0, fmt.Errorf("purge matching dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// add adds f's conditions to c.
func (f DeadLetterFilter) add(c *conditions) {
	if f.Topic != "" {
		c.add("topic = " + c.arg(f.Topic))
	}
	if f.Key != "" {
		c.add("key = " + c.arg(f.Key))
	}
	if f.MessageID != uuid.Nil {
		c.add("message_id = " + c.arg(f.MessageID))
	}
	if !f.Since.IsZero() {
		c.add("failed_at >= " + c.arg(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("failed_at < " + c.arg(f.Until))
	}
}

// conditions is a WHERE clause in the making: only the conditions a filter
// sets reach the planner, each with its numbered argument.
type conditions struct {
	terms []string
	args  []any
}

// arg adds v as an argument and returns its placeholder.
func (c *conditions) arg(v any) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(len(c.args))
}

func (c *conditions) add(term string) { c.terms = append(c.terms, term) }

// where is the WHERE clause, empty without conditions.
func (c *conditions) where() string {
	if len(c.terms) == 0 {
		return ""
	}
	return "\nWHERE " + strings.Join(c.terms, "\n  AND ")
}
