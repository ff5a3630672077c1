// Package mail sends outboxd's emails: a Mailer interface, an SMTP mailer, a
// log mailer for development, and the welcome email's templates.
//
// Delivery is at least once: a worker that crashes after the SMTP server
// accepted a mail but before recording it sends the mail again. Every mail
// therefore carries a Message-ID derived from the event's message id
// (MessageID), so a repeat is recognisable as the same mail.
package mail

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// Mailer sends mails.
type Mailer interface {
	// Send delivers m or returns why it could not. An error wrapping
	// ErrRejected means the server refused the mail for good; any other error
	// may succeed later.
	Send(ctx context.Context, m Mail) error
}

// Mail is one email with a plain-text part and an optional HTML alternative.
type Mail struct {
	// To is the recipient's address.
	To string
	// Subject is the subject line; line breaks are replaced by spaces.
	Subject string
	// Text is the plain-text part.
	Text string
	// HTML is the HTML part, sent as an alternative to Text when not empty.
	HTML string
	// MessageID is the Message-ID header, angle brackets included, for
	// example "<0190a3c4-...@outboxd>". Empty lets the mailer make one up.
	MessageID string
	// Headers are extra header fields, such as X-Correlation-ID.
	Headers map[string]string
}

// ErrRejected marks a send error that retrying cannot fix: the SMTP server
// answered with a permanent (5xx) failure.
var ErrRejected = errors.New("mail rejected by the server")

// messageIDDomain is the right-hand side of every Message-ID outboxd makes.
const messageIDDomain = "outboxd"

// MessageID returns the Message-ID header of the mail caused by message id:
// the same message always gives the same Message-ID, so a mail sent again
// after a redelivery is recognisable as a duplicate.
func MessageID(id uuid.UUID) string {
	return "<" + id.String() + "@" + messageIDDomain + ">"
}
