package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// backlogRun is how many messages the worker benchmark's backlog publishes
// in one run of the broker's batch publisher.
const backlogRun = 500

// workerUserName is every bench user's name, in the users row and the
// event.
const workerUserName = "Bench User"

// benchTraceparent is the traceparent of every message, as the bench's
// outbox fills carry.
const benchTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// workerUser is one signed-up user and its user.created message.
type workerUser struct {
	ev          event.UserCreated
	messageID   uuid.UUID
	correlation string
	payload     []byte
}

// newWorkerUser makes the i-th user of writer w with its event.
func newWorkerUser(w, i int) workerUser {
	id, email := newUser(w, i)
	ev := event.UserCreated{UserID: id, Email: email, Name: workerUserName, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	payload, _ := json.Marshal(ev)
	return workerUser{ev: ev, messageID: uuid.New(), correlation: uuid.NewString(), payload: payload}
}

// newWorkerUsers makes n users.
func newWorkerUsers(n int) []workerUser {
	users := make([]workerUser, n)
	for i := range users {
		users[i] = newWorkerUser(0, i)
	}
	return users
}

// message is u's user.created as the relay publishes it: the payload, and
// the message id, key, enqueue time, correlation id and traceparent as
// metadata.
func (u workerUser) message() *message.Message {
	m := message.NewMessage(u.messageID.String(), u.payload)
	m.Metadata.Set(outbox.MetadataMessageID, u.messageID.String())
	m.Metadata.Set(outbox.MetadataKey, u.ev.UserID.String())
	m.Metadata.Set(outbox.MetadataEnqueuedAt, time.Now().UTC().Format(time.RFC3339Nano))
	m.Metadata.Set(outbox.MetadataCorrelationID, u.correlation)
	m.Metadata.Set(outbox.MetadataTraceparent, benchTraceparent)
	return m
}

// insertUsers empties every table the worker benchmark writes, the users
// included, and copies users in.
func (e *env) insertUsers(ctx context.Context, users []workerUser) error {
	if err := e.resetWorkerTables(ctx, true); err != nil {
		return err
	}
	fmt.Fprintf(e.cfg.Progress, "worker: inserting %d users\n", len(users))
	_, err := e.pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "name", "password_hash", "created_at"},
		pgx.CopyFromSlice(len(users), func(i int) ([]any, error) {
			u := users[i].ev
			return []any{u.UserID, u.Email, u.Name, fakeHash, u.CreatedAt}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy users: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE users`); err != nil {
		return fmt.Errorf("vacuum users: %w", err)
	}
	return nil
}

// resetWorkerTables empties what the handlers write (profiles, audit_log,
// inbox, dead_letters) and, with users, the users too. audit_log refuses
// TRUNCATE by a trigger, which is turned off for the statement: the bench
// owns its database.
func (e *env) resetWorkerTables(ctx context.Context, users bool) error {
	tables := "profiles, inbox, dead_letters, audit_log"
	if users {
		tables = "users, " + tables
	}
	err := txOp(ctx, e.pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate`,
			`TRUNCATE ` + tables + ` CASCADE`,
			`ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate`,
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset the worker's tables: %w", err)
	}
	return nil
}

// natsJS connects to the run's NATS server for stream administration.
func (e *env) natsJS() (nats.JetStreamContext, func(), error) {
	nc, err := nats.Connect(e.natsURL, nats.Name("outboxd bench worker"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS: %w", err)
	}
	js, err := nc.JetStream()
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nc.Close, nil
}

// freshUserCreatedStream deletes the user.created stream, if it exists,
// and with it the handlers' durable consumers and the stream's memory of
// the message ids it took (a purge keeps them, and would drop a backlog
// published again as duplicates): the next publish or subscriber creates
// the stream anew, and the next worker's consumers read it from its start.
func (e *env) freshUserCreatedStream(ctx context.Context) error {
	js, closeJS, err := e.natsJS()
	if err != nil {
		return err
	}
	defer closeJS()
	name, err := js.StreamNameBySubject(event.TopicUserCreated, nats.Context(ctx))
	if errors.Is(err, nats.ErrStreamNotFound) || errors.Is(err, nats.ErrNoMatchingStream) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the user.created stream: %w", err)
	}
	if err := js.DeleteStream(name, nats.Context(ctx)); err != nil {
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	return nil
}

// publishBacklog publishes the users' events into a fresh user.created
// stream through the broker's batch publisher, runs of backlogRun in
// flight at once, and checks the stream holds them all.
func (e *env) publishBacklog(ctx context.Context, users []workerUser) error {
	if err := e.freshUserCreatedStream(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.cfg.Progress, "worker: publishing a backlog of %d messages\n", len(users))
	pub, err := broker.NewPublisher(ctx, e.brokerConfig())
	if err != nil {
		return err
	}
	defer pub.Close()
	bp, ok := pub.(relay.BatchPublisher)
	if !ok {
		return errors.New("the NATS publisher is not a relay.BatchPublisher")
	}
	for start := 0; start < len(users); start += backlogRun {
		chunk := users[start:min(start+backlogRun, len(users))]
		run := make([]relay.Outgoing, len(chunk))
		for i, u := range chunk {
			run[i] = relay.Outgoing{Topic: event.TopicUserCreated, Message: u.message()}
		}
		for i, err := range bp.PublishBatch(ctx, run) {
			if err != nil {
				return fmt.Errorf("publish the backlog: message %d: %w", start+i, err)
			}
		}
	}
	js, closeJS, err := e.natsJS()
	if err != nil {
		return err
	}
	defer closeJS()
	name, err := js.StreamNameBySubject(event.TopicUserCreated, nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("find the user.created stream: %w", err)
	}
	info, err := js.StreamInfo(name, nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	if info.State.Msgs != uint64(len(users)) {
		return fmt.Errorf("stream %s holds %d messages, want %d", name, info.State.Msgs, len(users))
	}
	return nil
}

// checkNoDeadLetters fails if a handler dead-lettered a message: the
// figures would then count work not done.
func (e *env) checkNoDeadLetters(ctx context.Context) error {
	var (
		n     int
		first string
	)
	err := e.pool.QueryRow(ctx, `SELECT count(*), coalesce(min(handler || ': ' || error), '') FROM dead_letters`).Scan(&n, &first)
	if err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%d messages dead-lettered, for example %s", n, first)
	}
	return nil
}
