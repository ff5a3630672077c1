package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/problem"
)

const goodPassword = "correct horse battery staple"

func TestSignupRejectsMalformedBodies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := signupBody(t, "ada@example.com", "Ada", goodPassword)
	tests := []struct {
		name   string
		body   string
		status int
		detail string
	}{
		{"malformed JSON", `{"email":"ada@example.com",`, http.StatusBadRequest, "not valid JSON"},
		{"syntax error", `{"email" "ada@example.com"}`, http.StatusBadRequest, "not valid JSON"},
		{"empty body", ``, http.StatusBadRequest, "JSON object"},
		{"null", `null`, http.StatusBadRequest, "JSON object"},
		{"array", `[]`, http.StatusBadRequest, "JSON object"},
		{"string", `"ada@example.com"`, http.StatusBadRequest, "JSON object"},
		{"unknown field", `{"email":"ada@example.com","name":"Ada","password":"` + goodPassword + `","admin":true}`, http.StatusBadRequest, `unknown field "admin"`},
		{"trailing object", good + good, http.StatusBadRequest, "nothing after it"},
		{"trailing garbage", good + ` x`, http.StatusBadRequest, "nothing after it"},
		{"wrong type", `{"email":42,"name":"Ada","password":"` + goodPassword + `"}`, http.StatusBadRequest, `"email" must be a string`},
		{"over 64 KiB", `{"email":"ada@example.com","name":"` + strings.Repeat("x", 64<<10) + `","password":"` + goodPassword + `"}`, http.StatusRequestEntityTooLarge, "64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.signup(t, tt.body, nil)
			p := requireProblem(t, r, tt.status, "/v1/signup")
			require.Contains(t, p.Detail, tt.detail)
			require.NotContains(t, string(r.body), goodPassword, "a problem never echoes the password")
		})
	}
	require.Zero(t, b.count(t, "users"))
}

func TestSignupNamesEveryInvalidField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		email = "ada@example.com"
		name  = "Ada Lovelace"
	)
	longEmail := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"
	require.Len(t, longEmail, 255)
	tests := []struct {
		name                  string
		email, uname, passwrd string
		fields                []string
	}{
		{"missing everything", "", "", "", []string{"email", "name", "password"}},
		{"not an address", "ada.example.com", name, goodPassword, []string{"email"}},
		{"display name", "Ada <ada@example.com>", name, goodPassword, []string{"email"}},
		{"angle brackets", "<ada@example.com>", name, goodPassword, []string{"email"}},
		{"CRLF injection", "ada@example.com\r\nBcc: all@example.com", name, goodPassword, []string{"email"}},
		{"trailing LF", "ada@example.com\n", name, goodPassword, []string{"email"}},
		{"two addresses", "ada@example.com, bob@example.com", name, goodPassword, []string{"email"}},
		{"comment", "ada@example.com (Ada)", name, goodPassword, []string{"email"}},
		{"NUL", "ada\x00@example.com", name, goodPassword, []string{"email"}},
		{"email too long", longEmail, name, goodPassword, []string{"email"}},
		{"empty name", email, "", goodPassword, []string{"name"}},
		{"blank name", email, "   \t ", goodPassword, []string{"name"}},
		{"name too long", email, strings.Repeat("é", 101), goodPassword, []string{"name"}},
		{"control character in name", email, "Ada\x07Lovelace", goodPassword, []string{"name"}},
		{"NUL in name", email, "Ada\x00", goodPassword, []string{"name"}},
		{"right-to-left override in name", email, "Eve \u202Etxt.exe", goodPassword, []string{"name"}},
		{"zero-width space in name", email, "Ada\u200BLovelace", goodPassword, []string{"name"}},
		{"line separator in name", email, "Eve\u2028Bcc: all@example.com", goodPassword, []string{"name"}},
		{"trailing LF in name", email, "Ada Lovelace\n", goodPassword, []string{"name"}},
		{"short password", email, name, "1234567", []string{"password"}},
		{"long password", email, name, strings.Repeat("p", 257), []string{"password"}},
		{"short password in runes", email, name, "ééééééé", []string{"password"}},
		{"all three bad", "Ada <ada@example.com>", strings.Repeat("n", 101), "short", []string{"email", "name", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.signup(t, signupBody(t, tt.email, tt.uname, tt.passwrd), nil)
			p := requireProblem(t, r, http.StatusUnprocessableEntity, "/v1/signup")
			require.Equal(t, problem.TypeValidation, p.Type)
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
				require.NotEmpty(t, f.Detail)
			}
			require.Equal(t, tt.fields, fields)
			if tt.passwrd != "" {
				require.NotContains(t, string(r.body), tt.passwrd, "a problem never echoes the password")
			}
		})
	}
	require.Zero(t, b.count(t, "users"))
}

// TestSignupNameWithBidiOverrideIs422: a right-to-left override, sent as a
// JSON escape the way a client would, makes "Eve \u202Etxt.exe" display as
// "Eve exe.txt"; the API refuses it, says why, and stores nothing.
func TestSignupNameWithBidiOverrideIs422(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.signup(t, `{"email":"eve@example.com","name":"Eve \u202Etxt.exe","password":"`+goodPassword+`"}`, nil)
	p := requireProblem(t, r, http.StatusUnprocessableEntity, "/v1/signup")
	require.Equal(t, problem.TypeValidation, p.Type)
	require.Equal(t, []problem.FieldError{{Field: "name",
		Detail: "must not contain control characters, line or paragraph separators, " +
			"or invisible formatting characters (such as bidi controls or zero-width characters)"}}, p.Errors)
	require.NotContains(t, string(r.body), "txt.exe", "a problem never echoes the value")
	require.Zero(t, b.count(t, "users"))
}

func TestSignupAcceptsFieldsAtTheirLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	maxEmail := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".co"
	require.Len(t, maxEmail, 254)
	tests := []struct {
		name, email, uname, password string
	}{
		{"254-byte email", maxEmail, "Max Email", "12345678"},
		{"100-rune name", "name@example.com", strings.Repeat("é", 100), strings.Repeat("p", 256)},
		{"unicode password of 8 runes", "runes@example.com", "Runes", "éééééééé"},
		{"plus addressing", "ada+outboxd@example.com", "Ada", goodPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := requireCreated(t, b.signup(t, signupBody(t, tt.email, tt.uname, tt.password), nil))
			require.Equal(t, tt.email, u.Email)
			require.Equal(t, tt.uname, u.Name)
		})
	}
}

func TestSignupEmailAlreadyRegisteredIs409(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireCreated(t, b.signup(t, signupBody(t, "ada@example.com", "Ada", goodPassword), nil))
	r := b.signup(t, signupBody(t, " ADA@Example.COM ", "Other Ada", "another password"), nil)
	p := requireProblem(t, r, http.StatusConflict, "/v1/signup")
	require.Equal(t, problem.TypeEmailTaken, p.Type)
	require.Equal(t, 1, b.count(t, "users"))
	require.Equal(t, 1, b.count(t, "outbox"))
}

func TestGetUserErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, path string
		status     int
	}{
		{"unknown id", "/v1/users/01890a5d-ac96-774b-bcce-b302099a8057", http.StatusNotFound},
		{"malformed id", "/v1/users/not-a-uuid", http.StatusBadRequest},
		{"unknown route", "/v1/nothing", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireProblem(t, b.do(t, http.MethodGet, tt.path, "", nil), tt.status, tt.path)
		})
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, http.MethodGet, "/v1/signup", "", nil)
	requireProblem(t, r, http.StatusMethodNotAllowed, "/v1/signup")
	require.Equal(t, "POST", r.header.Get("Allow"))
}

func TestSignupRateLimitAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.SignupRateLimit = new(2) })
	// Every attempt counts, valid or not: the limit protects the hasher.
	requireCreated(t, b.signup(t, signupBody(t, "one@example.com", "One", goodPassword), nil))
	requireProblem(t, b.signup(t, `{}`, nil), http.StatusUnprocessableEntity, "/v1/signup")

	r := b.signup(t, signupBody(t, "three@example.com", "Three", goodPassword), nil)
	p := requireProblem(t, r, http.StatusTooManyRequests, "/v1/signup")
	require.Equal(t, problem.TypeRateLimited, p.Type)
	// 2 per minute: the next token comes in 30 s at most.
	require.Contains(t, []string{"28", "29", "30"}, r.header.Get("Retry-After"))
	require.Equal(t, 1, b.count(t, "users"))

	// Reading users is not limited.
	requireProblem(t, b.do(t, http.MethodGet, "/v1/users/not-a-uuid", "", nil), http.StatusBadRequest, "/v1/users/not-a-uuid")
}

func TestSignupBadIdempotencyKeyIs400(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := signupBody(t, "ada@example.com", "Ada", goodPassword)
	for name, key := range map[string]string{"too long": strings.Repeat("k", 256), "not ASCII": "clé"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := b.signup(t, body, map[string]string{"Idempotency-Key": key})
			p := requireProblem(t, r, http.StatusBadRequest, "/v1/signup")
			require.Contains(t, p.Detail, "Idempotency-Key")
		})
	}
}
