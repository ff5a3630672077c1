package mail_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
)

func TestWelcome(t *testing.T) {
	t.Parallel()
	ev := event.UserCreated{
		UserID:    uuid.New(),
		Email:     "ann@example.com",
		Name:      `<b>Ann & "Bo"</b>`,
		CreatedAt: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC),
	}
	id := uuid.New()

	m, err := mail.Welcome(ev, id)
	require.NoError(t, err)
	require.Equal(t, "ann@example.com", m.To)
	require.Equal(t, `Welcome to outboxd, <b>Ann & "Bo"</b>`, m.Subject)
	require.Equal(t, "<"+id.String()+"@outboxd>", m.MessageID)

	require.Contains(t, m.HTML, `Hi &lt;b&gt;Ann &amp; &#34;Bo&#34;&lt;/b&gt;,`, "the name is escaped in HTML")
	require.NotContains(t, m.HTML, "<b>Ann", "the name is never markup")
	require.Contains(t, m.HTML, "1 March 2026 at 09:30 UTC")
	require.Contains(t, m.Text, `Hi <b>Ann & "Bo"</b>,`, "plain text shows the name as typed")
	require.Contains(t, m.Text, "ann@example.com")

	again, err := mail.Welcome(ev, id)
	require.NoError(t, err)
	require.Equal(t, m, again, "a redelivery renders the very same mail")
}

func TestWelcomeSubjectStaysOneLine(t *testing.T) {
	t.Parallel()
	m, err := mail.Welcome(event.UserCreated{Email: "a@example.com", Name: "Ann\r\nBcc: evil@example.com"}, uuid.New())
	require.NoError(t, err)
	require.Equal(t, "Welcome to outboxd, Ann Bcc: evil@example.com", m.Subject)
}
