package profilerpc

import (
	"github.com/google/uuid"

	"github.com/outboxd/outboxd/internal/profile"
)

// Topics and metadata of the profile.get contract.
const (
	// RequestTopicDefault is the topic profile.get requests are sent to.
	RequestTopicDefault = "profile.get"
	// CommandName names the request in its "name" metadata; the Server
	// ignores messages of any other name.
	CommandName = "profile.get"
	// ReplyTopicPrefix starts every Client's reply topic. The Server only
	// ever publishes replies to topics of this form, so a request cannot
	// make it publish into an event topic.
	ReplyTopicPrefix = "profile.reply."
	// QueueGroup is the consumer group the profile services share requests
	// in: a request goes to one of them.
	QueueGroup = "outboxd-profile"
)

// Metadata keys a request carries besides Watermill's own.
const (
	// MetadataReplyTo names the reply topic of the Client that sent the
	// request.
	MetadataReplyTo = "reply_to"
	// MetadataTimeoutMS is how many milliseconds the sender still waited
	// when it sent the request. A duration rather than a deadline, so that
	// clocks that disagree between hosts do not matter.
	MetadataTimeoutMS = "timeout_ms"
	// MetadataCorrelationID carries the id of the HTTP request that caused
	// the request, for the logs of both sides.
	MetadataCorrelationID = "correlation_id"
)

// GetProfile is the profile.get request: the profile of one user.
type GetProfile struct {
	UserID uuid.UUID `json:"user_id"`
}

// Name implements the name Watermill's CQRS marshaler gives the command:
// the contract's name rather than the Go type's, so renaming the type does
// not break running services.
func (GetProfile) Name() string { return CommandName }

// ProfileReply is the answer to GetProfile. A missing profile is a result,
// not an error: Found is false and Profile nil, both when no user has the id
// and when the worker has not created the profile yet.
type ProfileReply struct {
	Found   bool             `json:"found"`
	Profile *profile.Profile `json:"profile,omitempty"`
}
