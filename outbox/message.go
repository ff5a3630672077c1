package outbox

import (
	"github.com/google/uuid"
)

// Metadata keys that the outbox and the relay set on every message.
const (
	// MetadataMessageID carries the message's UUID.
	MetadataMessageID = "message_id"
	// MetadataKey carries the message's ordering key.
	MetadataKey = "key"
	// MetadataEnqueuedAt carries the RFC 3339 time the message was enqueued.
	MetadataEnqueuedAt = "enqueued_at"
	// MetadataCorrelationID carries the id that ties the message to the
	// request that caused it.
	MetadataCorrelationID = "correlation_id"
	// MetadataTraceparent carries the W3C trace context of the writer.
	MetadataTraceparent = "traceparent"
)

// Message is one message to publish. Only Topic is required.
type Message struct {
	// ID identifies the message for its whole life: consumers deduplicate by
	// it. Defaults to a new UUIDv7 when zero.
	ID uuid.UUID
	// Topic is where the relay publishes the message, for example
	// "user.created".
	Topic string
	// Key orders messages: messages with the same non-empty key are
	// published in order and never overtaken (a key never has two
	// unacknowledged messages), in the order they were enqueued when the
	// relay polls and in commit order when it streams the WAL. Defaults to
	// "": a message with an empty key carries no order and is published
	// alongside any other.
	Key string
	// Payload is published byte for byte.
	Payload []byte
	// Metadata travels with the message (Watermill metadata, broker headers).
	// Defaults to none.
	Metadata map[string]string
}
