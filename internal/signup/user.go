package signup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
)

// ErrEmailTaken is returned when a user with the same email, compared
// case-insensitively, already exists.
var ErrEmailTaken = errors.New("email already registered")

// ErrNotFound is returned for a user id that does not exist.
var ErrNotFound = errors.New("user not found")

// emailIndex is the unique index on lower(email), from migrations/00001.
const emailIndex = "users_email_lower_key"

// User is a registered user as the API shows it: never any password data.
type User struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Trace ties the user.created message to the request that caused it.
type Trace struct {
	// CorrelationID is the request id. Defaults to none.
	CorrelationID string
	// Traceparent is the request's W3C trace context. Defaults to none.
	Traceparent string
}

// newUser is the user described by in, with a new id and creation time.
func newUser(in Input) (User, error) {
	// UUIDv7 ids are time-ordered, so inserts append to the primary key
	// index instead of landing on random pages.
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, fmt.Errorf("new user id: %w", err)
	}
	// PostgreSQL keeps microseconds: the response and the event show the
	// time the row holds.
	createdAt := time.Now().UTC().Truncate(time.Microsecond)
	return User{ID: id, Email: in.Email, Name: in.Name, CreatedAt: createdAt}, nil
}

// queueCreateUser queues on b the insert of user, with passwordHash, and of
// its user.created message. Sent outside a transaction, b is one implicit
// transaction and one round trip: both rows commit, or neither. The batch's
// error goes through createUserError.
func queueCreateUser(b *pgx.Batch, w outbox.Writer, user User, passwordHash string, trace Trace) error {
	payload, err := json.Marshal(event.UserCreated{
		UserID:    user.ID,
		Email:     user.Email,
		Name:      user.Name,
		CreatedAt: user.CreatedAt,
	})
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", event.TopicUserCreated, err)
	}
	metadata := map[string]string{}
	if trace.CorrelationID != "" {
		metadata[outbox.MetadataCorrelationID] = trace.CorrelationID
	}
	if trace.Traceparent != "" {
		metadata[outbox.MetadataTraceparent] = trace.Traceparent
	}
	queueInsertUser(b, user, passwordHash)
	err = w.EnqueueBatch(b, outbox.Message{
		Topic:    event.TopicUserCreated,
		Key:      user.ID.String(),
		Payload:  payload,
		Metadata: metadata,
	})
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", event.TopicUserCreated, err)
	}
	return nil
}

// queueInsertUser queues on b the insert of user's row alone.
func queueInsertUser(b *pgx.Batch, user User, passwordHash string) {
	b.Queue(`INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		user.ID, user.Email, user.Name, passwordHash, user.CreatedAt)
}

// createUserError is the error of a batch holding queueCreateUser:
// ErrEmailTaken for an email already registered, otherwise err without the
// row data PostgreSQL may quote.
func createUserError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == emailIndex {
		return ErrEmailTaken
	}
	return fmt.Errorf("insert user and its %s message: %w", event.TopicUserCreated, redact(err))
}

// querier is what GetUser needs of a pool, a connection or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// GetUser returns the user with id, or ErrNotFound.
func GetUser(ctx context.Context, db querier, id uuid.UUID) (User, error) {
	user := User{ID: id}
	err := db.QueryRow(ctx, `SELECT email, name, created_at FROM users WHERE id = $1`, id).
		Scan(&user.Email, &user.Name, &user.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, redact(err))
	}
	user.CreatedAt = user.CreatedAt.UTC()
	return user, nil
}

// redact drops the detail of a PostgreSQL error: for a constraint violation
// on users it reads "Failing row contains (…)", which includes the password
// hash, and errors end up in logs. The SQLSTATE stays, so callers still
// tell what happened.
func redact(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	return &redactedPgError{code: pgErr.Code, constraint: pgErr.ConstraintName, message: pgErr.Message}
}

type redactedPgError struct {
	code, constraint, message string
}

func (e *redactedPgError) Error() string {
	if e.constraint != "" {
		return fmt.Sprintf("%s (SQLSTATE %s, constraint %s)", e.message, e.code, e.constraint)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", e.message, e.code)
}

// SQLState returns the error's SQLSTATE code, like pgconn.PgError's.
func (e *redactedPgError) SQLState() string { return e.code }
