package signup

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/outboxd/outboxd/internal/problem"
)

// Field limits of the HTTP contract.
const (
	// MaxEmailBytes is RFC 5321's limit on a forward path.
	MaxEmailBytes = 254
	// MaxNameRunes bounds a trimmed name, in characters.
	MaxNameRunes = 100
	// MinPasswordRunes is the shortest accepted password, in characters.
	MinPasswordRunes = 8
	// MaxPasswordRunes is the longest accepted password, in characters; it
	// bounds the work an attacker can hand to the hasher.
	MaxPasswordRunes = 256
)

// Input is a validated signup request: Email and Name are trimmed, Password
// is as sent.
type Input struct {
	Email    string
	Name     string
	Password string
}

// ValidationError lists every invalid field of a request at once, so a
// client can fix them all in one round.
type ValidationError struct {
	Fields []problem.FieldError
}

// Error names the invalid fields.
func (e *ValidationError) Error() string {
	names := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = f.Field
	}
	return "invalid fields: " + strings.Join(names, ", ")
}

// Validate checks every field of r and returns its normalized Input, or a
// *ValidationError naming each invalid field.
func (r Request) Validate() (Input, error) {
	in := Input{Password: r.Password}
	fields := make([]problem.FieldError, 0, 3)
	var detail string
	if in.Email, detail = validateEmail(r.Email); detail != "" {
		fields = append(fields, problem.FieldError{Field: "email", Detail: detail})
	}
	if in.Name, detail = validateName(r.Name); detail != "" {
		fields = append(fields, problem.FieldError{Field: "name", Detail: detail})
	}
	if detail = validatePassword(r.Password); detail != "" {
		fields = append(fields, problem.FieldError{Field: "password", Detail: detail})
	}
	if len(fields) > 0 {
		return Input{}, &ValidationError{Fields: fields}
	}
	return in, nil
}

// validateEmail returns the trimmed address, or why raw is not one plain
// address. The parsed address must equal the input, which rules out display
// names, angle brackets, comments and quoting games that net/mail accepts.
func validateEmail(raw string) (string, string) {
	// CR and LF are refused before trimming: an address is pasted into mail
	// headers downstream, and a line break there is a header injection.
	if strings.ContainsAny(raw, "\r\n") {
		return "", "must not contain line breaks"
	}
	email := strings.TrimSpace(raw)
	switch {
	case email == "":
		return "", "is required"
	case len(email) > MaxEmailBytes:
		return "", fmt.Sprintf("must be at most %d bytes long", MaxEmailBytes)
	case strings.ContainsFunc(email, unicode.IsControl):
		return "", "must not contain control characters"
	case strings.ContainsAny(email, "<>"):
		return "", "must be a bare address like ada@example.com, without angle brackets"
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", "must be a single email address like ada@example.com, without a display name"
	}
	return email, ""
}

// validateName returns the trimmed name, or why raw is not an acceptable one.
// Forbidden characters are refused before trimming, anywhere in raw, so
// that the rule is the OpenAPI document's pattern exactly; what trimming
// then removes is only space (category Zs).
func validateName(raw string) (string, string) {
	if strings.ContainsFunc(raw, forbiddenInName) {
		return "", "must not contain control characters, line or paragraph separators, " +
			"or invisible formatting characters (such as bidi controls or zero-width characters)"
	}
	name := strings.TrimSpace(raw)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", "is required"
	case n > MaxNameRunes:
		return "", fmt.Sprintf("must be at most %d characters long", MaxNameRunes)
	}
	return name, ""
}

// forbiddenInName reports the characters a name must not contain: control
// characters (category Cc: C0 with tab, CR and LF, DEL, C1), format
// characters (Cf: bidi controls such as U+202E and U+2066..U+2069,
// zero-width characters U+200B..U+200D, U+FEFF, the soft hyphen) and the
// line and paragraph separators (Zl U+2028, Zp U+2029). They are invisible
// or reorder or break the text around them, so a name holding one can
// display as something else in a mail's subject, a log line or a console.
//
// The zero-width joiner U+200D is Cf too, so emoji built with it (🧑‍💻, a
// family) are refused; single emoji, skin tones, flags and keycaps are not
// Cf and pass. So is the zero-width non-joiner U+200C, which some Persian
// spellings use: such a name must be sent without it.
func forbiddenInName(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// validatePassword says why password is not acceptable, or "" when it is.
// The password is not trimmed: its spaces are the user's choice.
func validatePassword(password string) string {
	switch n := utf8.RuneCountInString(password); {
	case password == "":
		return "is required"
	case n < MinPasswordRunes:
		return fmt.Sprintf("must be at least %d characters long", MinPasswordRunes)
	case n > MaxPasswordRunes:
		return fmt.Sprintf("must be at most %d characters long", MaxPasswordRunes)
	}
	return ""
}
