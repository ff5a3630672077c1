package worker

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/outbox"
)

func TestMessageID(t *testing.T) {
	t.Parallel()
	id := uuid.New()

	got, err := messageID(message.NewMessage(id.String(), nil))
	require.NoError(t, err)
	require.Equal(t, id, got)

	fromMetadata := message.NewMessage("broker-assigned", nil)
	fromMetadata.Metadata.Set(outbox.MetadataMessageID, id.String())
	got, err = messageID(fromMetadata)
	require.NoError(t, err)
	require.Equal(t, id, got, "falls back to the message_id metadata")

	_, err = messageID(message.NewMessage("nope", nil))
	require.True(t, isPermanent(err))
	_, err = messageID(message.NewMessage(uuid.Nil.String(), nil))
	require.True(t, isPermanent(err), "the zero UUID is no id")
}

func TestDecodeUserCreated(t *testing.T) {
	t.Parallel()
	userID := uuid.New()
	for name, tc := range map[string]struct {
		payload string
		errPart string
	}{
		"Valid":       {`{"user_id":"` + userID.String() + `","email":"a@example.com","name":"A","created_at":"2026-01-01T00:00:00Z","extra":1}`, ""},
		"NotJSON":     {`{"user_id":`, "decode user.created payload"},
		"WrongType":   {`{"user_id":42}`, "decode user.created payload"},
		"NoUserID":    {`{"email":"a@example.com","created_at":"2026-01-01T00:00:00Z"}`, "no user_id"},
		"NoEmail":     {`{"user_id":"` + userID.String() + `","created_at":"2026-01-01T00:00:00Z"}`, "no email"},
		"NoCreatedAt": {`{"user_id":"` + userID.String() + `","email":"a@example.com"}`, "no created_at"},
		"Empty":       {``, "decode user.created payload"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, err := decodeUserCreated(message.NewMessage(uuid.NewString(), []byte(tc.payload)))
			if tc.errPart == "" {
				require.NoError(t, err)
				require.Equal(t, userID, ev.UserID)
				return
			}
			require.ErrorContains(t, err, tc.errPart)
			require.True(t, isPermanent(err), "a payload that does not decode never will")
		})
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	require.True(t, isPermanent(fmt.Errorf("send: %w", mail.ErrRejected)))
	require.True(t, isPermanent(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "22P02"})), "invalid data")
	require.False(t, isPermanent(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23503"})), "a missing row may appear")
	require.False(t, isPermanent(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "40001"})), "serialization failures pass")
	require.False(t, isPermanent(fmt.Errorf("dial: connection refused")))
}
