package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/profile"
)

// AuditActorSignup is the actor of the audit record of a user.created event.
const AuditActorSignup = "signup"

// recordTimeout bounds recording a sent mail in the inbox, which runs even
// after the message's context ended: the mail is out, and forgetting it
// would send it again.
const recordTimeout = 5 * time.Second

// delivery is one decoded user.created message.
type delivery struct {
	id          uuid.UUID
	event       event.UserCreated
	payload     []byte
	correlation string // the message's correlation id, or ""
}

// effect performs one handler's effect for a delivery and reports done ==
// false when the handler had already processed the message.
type effect func(ctx context.Context, d delivery) (done bool, err error)

// effects maps each handler to its effect.
func (w *Worker) effects() map[string]effect {
	return map[string]effect{
		HandlerEmail:   w.sendWelcome,
		HandlerProfile: w.createProfile,
		HandlerAudit:   w.appendAudit,
	}
}

// handle adapts an effect to Watermill: it decodes the message (an invalid
// one is a poison message) and counts duplicates.
func (w *Worker) handle(handler string, eff effect) message.NoPublishHandlerFunc {
	b := w.batchers[handler]
	return func(msg *message.Message) error {
		ctx := msg.Context()
		if b != nil {
			b.enter()
			defer b.leave()
		}
		id, err := messageID(msg)
		if err != nil {
			return err
		}
		ev, err := decodeUserCreated(msg)
		if err != nil {
			return err
		}
		done, err := eff(ctx, delivery{id: id, event: ev, payload: msg.Payload, correlation: correlationID(ctx)})
		if err != nil {
			return err
		}
		if !done {
			w.metrics.duplicates.WithLabelValues(handler).Inc()
			loggerFrom(ctx, w.logger).DebugContext(ctx, "duplicate message skipped")
		}
		return nil
	}
}

// createProfile inserts the user's profile with the name from the event and
// the table's defaults for the rest, once per message, in a batch with the
// other profile messages in flight.
func (w *Worker) createProfile(ctx context.Context, d delivery) (bool, error) {
	return w.batchers[HandlerProfile].process(ctx, d)
}

// createProfiles writes the profiles of a batch's deliveries in one
// statement.
func createProfiles(ctx context.Context, tx pgx.Tx, ds []delivery) error {
	users, names := make([]uuid.UUID, len(ds)), make([]string, len(ds))
	for i, d := range ds {
		users[i], names[i] = d.event.UserID, d.event.Name
	}
	return profile.CreateSet(ctx, tx, users, names)
}

// appendAudit appends user.created to audit_log, once per message, in a
// batch with the other audit messages in flight.
func (w *Worker) appendAudit(ctx context.Context, d delivery) (bool, error) {
	return w.batchers[HandlerAudit].process(ctx, d)
}

// appendAudits appends the audit records of a batch's deliveries in one
// statement, in the batch's order. A record's time is when the user was
// created, not when the worker got to it.
func appendAudits(ctx context.Context, tx pgx.Tx, ds []delivery) error {
	var (
		subjects     = make([]string, len(ds))
		occurred     = make([]time.Time, len(ds))
		correlations = make([]string, len(ds))
		messages     = make([]pgtype.UUID, len(ds))
		payloads     = make([]string, len(ds))
	)
	for i, d := range ds {
		subjects[i], occurred[i], correlations[i] = d.event.UserID.String(), d.event.CreatedAt, d.correlation
		messages[i], payloads[i] = pgtype.UUID{Bytes: d.id, Valid: true}, string(d.payload)
	}
	_, err := tx.Exec(ctx, `
INSERT INTO audit_log (event, actor, subject, occurred_at, correlation_id, message_id, payload)
SELECT $1, $2, r.subject, r.occurred_at, r.correlation_id, r.message_id, r.payload::jsonb
FROM unnest($3::text[], $4::timestamptz[], $5::text[], $6::uuid[], $7::text[])
     WITH ORDINALITY AS r(subject, occurred_at, correlation_id, message_id, payload, n)
ORDER BY r.n`,
		event.TopicUserCreated, AuditActorSignup, subjects, occurred, correlations, messages, payloads)
	if err != nil {
		return fmt.Errorf("append %d audit records: %w", len(ds), err)
	}
	return nil
}

// sendWelcome sends the welcome mail unless the inbox says it was sent, and
// records it after the send. A crash between the two sends it again, with
// the same Message-ID.
func (w *Worker) sendWelcome(ctx context.Context, d delivery) (bool, error) {
	seen, err := w.mailLookups.process(ctx, d)
	if err != nil {
		return false, fmt.Errorf("inbox %s: look up message %s: %w", HandlerEmail, d.id, err)
	}
	if seen {
		return false, nil
	}
	m, err := mail.Welcome(d.event, d.id)
	if err != nil {
		return false, permanent(err)
	}
	if c := correlationID(ctx); c != "" {
		m.Headers = map[string]string{"X-Correlation-ID": c}
	}
	select {
	case w.sending <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("send welcome mail: %w", ctx.Err())
	}
	err = w.mailer.Send(ctx, m)
	<-w.sending
	if err != nil {
		return false, fmt.Errorf("send welcome mail: %w", err)
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	// Recorded in a batch with the other mails just sent: a commit for
	// many mails, not one each.
	if _, err := w.mailRecords.process(recordCtx, d); err != nil {
		// Failing now would only send the mail again at once.
		loggerFrom(ctx, w.logger).ErrorContext(ctx, "welcome mail sent but not recorded: a redelivery sends it again", "error", err)
	}
	return true, nil
}
