package profile

import (
	"time"

	"github.com/google/uuid"
)

// Profile is a user's profile, as stored in the profiles table. Its JSON
// form is both the profile service's reply and the API's response body.
type Profile struct {
	UserID      uuid.UUID `json:"user_id"`
	DisplayName string    `json:"display_name"`
	Bio         string    `json:"bio"`
	AvatarURL   string    `json:"avatar_url"`
	Locale      string    `json:"locale"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}
