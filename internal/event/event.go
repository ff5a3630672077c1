// Package event defines the events outboxd publishes: their topics and
// payloads. Payloads never carry password data.
package event

import (
	"time"

	"github.com/google/uuid"
)

// TopicUserCreated is the topic of UserCreated, published once per signup.
const TopicUserCreated = "user.created"

// UserCreated is the payload of a user.created event. Its message key is the
// user id.
type UserCreated struct {
	UserID    uuid.UUID `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}
