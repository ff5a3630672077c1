package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"

	"github.com/google/uuid"

	"github.com/outboxd/outboxd/internal/event"
)

// templates are compiled into the binary, so a deployed worker cannot miss
// them.
//
//go:embed templates/*.tmpl
var templates embed.FS

// The HTML part goes through html/template so that a name like
// `<b>Ann & "Bo"</b>` is shown as text, never interpreted as markup.
var (
	welcomeHTML = htmltemplate.Must(htmltemplate.ParseFS(templates, "templates/welcome.html.tmpl"))
	welcomeText = texttemplate.Must(texttemplate.ParseFS(templates, "templates/welcome.txt.tmpl"))
)

// WelcomeSubjectPrefix starts the subject of every welcome mail.
const WelcomeSubjectPrefix = "Welcome to outboxd, "

// Welcome renders the welcome mail for a user.created event carried by the
// message messageID. Its Message-ID is MessageID(messageID), so every
// delivery of the same message renders the same mail.
func Welcome(ev event.UserCreated, messageID uuid.UUID) (Mail, error) {
	var text, html bytes.Buffer
	if err := welcomeText.Execute(&text, ev); err != nil {
		return Mail{}, fmt.Errorf("render welcome mail text: %w", err)
	}
	if err := welcomeHTML.Execute(&html, ev); err != nil {
		return Mail{}, fmt.Errorf("render welcome mail HTML: %w", err)
	}
	return Mail{
		To:        ev.Email,
		Subject:   WelcomeSubjectPrefix + oneLine(ev.Name),
		Text:      text.String(),
		HTML:      html.String(),
		MessageID: MessageID(messageID),
	}, nil
}
