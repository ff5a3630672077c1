package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// The sources of dead letters: the relay's (the broker refused the message)
// and the handlers' (a handler gave up on it).
const (
	SourceHandler = "handler"
	SourceRelay   = "relay"
)

// Letter is a dead letter of either source.
type Letter struct {
	Source string
	ID     int64
	// Handler is the handler that gave up, "" for the relay's.
	Handler   string
	MessageID uuid.UUID
	Topic     string
	// Key is the message's ordering key: the relay's column, the metadata
	// a handler received.
	Key      string
	Payload  []byte
	Metadata map[string]string
	Error    string
	Attempts int
	FailedAt time.Time
	// CreatedAt is when the message was enqueued, zero where unknown.
	CreatedAt time.Time
}

// Ref names a dead letter in forms and links: source:id.
func (l Letter) Ref() string { return l.Source + ":" + strconv.FormatInt(l.ID, 10) }

// letterRef is a parsed Ref.
type letterRef struct {
	source string
	id     int64
}

func parseRef(s string) (letterRef, error) {
	source, id, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || (source != SourceRelay && source != SourceHandler) {
		return letterRef{}, fmt.Errorf("%q is not a dead letter (want relay:ID or handler:ID)", s)
	}
	return letterRef{source, n}, nil
}

// Filter selects dead letters of both sources.
type Filter struct {
	// Source is SourceRelay, SourceHandler or "" for both.
	Source string
	// Handler keeps one handler's dead letters (so none of the relay's).
	Handler string
	Topic   string
	// Key keeps the relay's dead letters of this key: only that table has
	// the column.
	Key       string
	MessageID uuid.UUID
	Since     time.Time
	Until     time.Time
}

// wants reports whether f may select dead letters of source.
func (f Filter) wants(source string) bool {
	switch source {
	case SourceRelay:
		return (f.Source == "" || f.Source == SourceRelay) && f.Handler == ""
	default:
		return (f.Source == "" || f.Source == SourceHandler) && f.Key == ""
	}
}

func (f Filter) relay() relay.DeadLetterFilter {
	return relay.DeadLetterFilter{Topic: f.Topic, Key: f.Key, MessageID: f.MessageID, Since: f.Since, Until: f.Until}
}

func (f Filter) handler() deadletter.Filter {
	return deadletter.Filter{Handler: f.Handler, Topic: f.Topic, MessageID: f.MessageID, Since: f.Since, Until: f.Until}
}

// Cursor is where a page of the merged list ends. The list is ordered by
// failure time, then source, then id, all descending, so that each table
// pages by its own (failed_at, id) keyset.
type Cursor struct {
	FailedAt time.Time
	Source   string
	ID       int64
}

// String encodes c for a link.
func (c Cursor) String() string {
	if c.FailedAt.IsZero() {
		return ""
	}
	return c.FailedAt.UTC().Format(time.RFC3339Nano) + "," + c.Source + "," + strconv.FormatInt(c.ID, 10)
}

func parseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) == 3 {
		at, err1 := time.Parse(time.RFC3339Nano, parts[0])
		id, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 == nil && err2 == nil && (parts[1] == SourceRelay || parts[1] == SourceHandler) {
			return Cursor{FailedAt: at, Source: parts[1], ID: id}, nil
		}
	}
	return Cursor{}, errors.New("not a page position")
}

// before is the position in source's own table from which rows come after
// c in the merged order: at c's failure time, a source ordered below c's
// (handler < relay, descending puts relay first) still has all its rows to
// come, c's own source those of lower ids, a source above none.
func (c Cursor) before(source string) (time.Time, int64) {
	switch {
	case c.FailedAt.IsZero():
		return time.Time{}, 0
	case source < c.Source:
		return c.FailedAt, 1<<63 - 1
	case source == c.Source:
		return c.FailedAt, c.ID
	default:
		return c.FailedAt, 0
	}
}

func cursorOf(l Letter) Cursor { return Cursor{FailedAt: l.FailedAt, Source: l.Source, ID: l.ID} }

// store reads and changes dead letters through the packages that own them.
type store struct {
	pool *pgxpool.Pool
}

// list returns up to limit dead letters after c, newest first, and the
// cursor of the next page (zero at the end).
func (s store) list(ctx context.Context, f Filter, c Cursor, limit int) ([]Letter, Cursor, error) {
	var all []Letter
	if f.wants(SourceRelay) {
		at, id := c.before(SourceRelay)
		rows, err := relay.ListDeadLetters(ctx, s.pool, relay.ListDeadLettersParams{
			DeadLetterFilter: f.relay(), NewestFirst: true,
			Before: relay.DeadLetterPosition{FailedAt: at, ID: id}, Limit: limit + 1,
		})
		if err != nil {
			return nil, Cursor{}, err
		}
		for _, d := range rows {
			all = append(all, fromRelay(d))
		}
	}
	if f.wants(SourceHandler) {
		hf := f.handler()
		hf.NewestFirst, hf.Limit = true, limit+1
		hf.Before.FailedAt, hf.Before.ID = c.before(SourceHandler)
		rows, err := deadletter.List(ctx, s.pool, hf)
		if err != nil {
			return nil, Cursor{}, err
		}
		for _, d := range rows {
			all = append(all, fromHandler(d))
		}
	}
	slices.SortFunc(all, func(a, b Letter) int {
		return cmp.Or(b.FailedAt.Compare(a.FailedAt), cmp.Compare(b.Source, a.Source), cmp.Compare(b.ID, a.ID))
	})
	if len(all) <= limit {
		return all, Cursor{}, nil
	}
	all = all[:limit]
	return all, cursorOf(all[limit-1]), nil
}

// get returns one dead letter, nil when there is none by that ref.
func (s store) get(ctx context.Context, ref letterRef) (*Letter, error) {
	if ref.source == SourceRelay {
		rows, err := relay.ListDeadLetters(ctx, s.pool, relay.ListDeadLettersParams{AfterID: ref.id - 1, Limit: 1})
		if err != nil || len(rows) == 0 || rows[0].ID != ref.id {
			return nil, err
		}
		l := fromRelay(rows[0])
		return &l, nil
	}
	rows, err := deadletter.List(ctx, s.pool, deadletter.Filter{AfterID: ref.id - 1, Limit: 1})
	if err != nil || len(rows) == 0 || rows[0].ID != ref.id {
		return nil, err
	}
	l := fromHandler(rows[0])
	return &l, nil
}

// count returns how many dead letters f selects.
func (s store) count(ctx context.Context, f Filter) (int64, error) {
	var n int64
	if f.wants(SourceRelay) {
		r, err := relay.CountDeadLetters(ctx, s.pool, f.relay())
		if err != nil {
			return 0, err
		}
		n += r
	}
	if f.wants(SourceHandler) {
		h, err := deadletter.Count(ctx, s.pool, f.handler())
		if err != nil {
			return 0, err
		}
		n += h
	}
	return n, nil
}

func fromRelay(d relay.DeadLetter) Letter {
	return Letter{Source: SourceRelay, ID: d.ID, MessageID: d.MessageID, Topic: d.Topic, Key: d.Key,
		Payload: d.Payload, Metadata: d.Metadata, Error: d.LastError, Attempts: d.Attempts,
		FailedAt: d.FailedAt, CreatedAt: d.CreatedAt}
}

func fromHandler(d deadletter.DeadLetter) Letter {
	l := Letter{Source: SourceHandler, ID: d.ID, Handler: d.Handler, MessageID: d.MessageID, Topic: d.Topic,
		Key: d.Metadata[outbox.MetadataKey], Payload: d.Payload, Metadata: d.Metadata, Error: d.Error,
		Attempts: d.Attempts, FailedAt: d.FailedAt}
	if at, err := time.Parse(time.RFC3339Nano, d.Metadata[outbox.MetadataEnqueuedAt]); err == nil {
		l.CreatedAt = at
	}
	return l
}
