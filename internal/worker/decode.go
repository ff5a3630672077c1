package worker

import (
	"encoding/json"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
)

// messageID is the outbox message id of msg: its Watermill UUID, or the
// message_id metadata when a transport did not keep the UUID.
func messageID(msg *message.Message) (uuid.UUID, error) {
	if id, err := uuid.Parse(msg.UUID); err == nil && id != uuid.Nil {
		return id, nil
	}
	if id, err := uuid.Parse(msg.Metadata.Get(outbox.MetadataMessageID)); err == nil && id != uuid.Nil {
		return id, nil
	}
	return uuid.Nil, poison("no message id: UUID %q and metadata %s are not UUIDs", msg.UUID, outbox.MetadataMessageID)
}

// decodeUserCreated decodes and checks a user.created payload. Unknown
// fields are allowed, so that producers can add some before consumers know
// them.
func decodeUserCreated(msg *message.Message) (event.UserCreated, error) {
	var ev event.UserCreated
	if err := json.Unmarshal(msg.Payload, &ev); err != nil {
		return ev, poison("decode %s payload: %v", event.TopicUserCreated, err)
	}
	switch {
	case ev.UserID == uuid.Nil:
		return ev, poison("%s payload has no user_id", event.TopicUserCreated)
	case ev.Email == "":
		return ev, poison("%s payload has no email", event.TopicUserCreated)
	case ev.CreatedAt.IsZero():
		return ev, poison("%s payload has no created_at", event.TopicUserCreated)
	}
	return ev, nil
}
