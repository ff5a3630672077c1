package relay

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Outgoing is one message of a run handed to a BatchPublisher, with the
// topic it goes to.
type Outgoing struct {
	Topic   string
	Message *message.Message
}

// BatchPublisher is a Watermill publisher that also takes a run of
// messages at once, of one topic or several, and reports the fate of each:
// a broker that acknowledges asynchronously (JetStream, RabbitMQ publisher
// confirms, Kafka, a pipelined Redis) then keeps a whole run in flight
// instead of one message per round trip. The relay finds it by a type
// assertion on its publisher; a plain message.Publisher keeps working one
// message at a time per lane.
//
// The relay never puts two messages of one non-empty key in a run: a key's
// next message goes out only once the previous one is acknowledged, so a
// later message can never be stored before an earlier one that failed.
// Messages with an empty key carry no order and share runs freely.
type BatchPublisher interface {
	message.Publisher
	// PublishBatch publishes run and returns one error per message, in the
	// order of run: nil once the broker has stored that message (as Publish
	// would have returned nil for it alone). It returns once every
	// message's fate is known. When ctx ends first, the messages whose fate
	// is not known get an error; publishing any of them again is safe (the
	// relay does, with the same message id).
	PublishBatch(ctx context.Context, run []Outgoing) []error
}
