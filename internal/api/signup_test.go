package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/problem"
	"github.com/outboxd/outboxd/outbox"
)

func TestSignupRollsBackUserWhenOutboxInsertFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(context.Background(), `
		CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'outbox insert refused by test'; END $$;
		CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox();`)
	require.NoError(t, err)

	r := b.signup(t, signupBody(t, "ada@example.com", "Ada", "correct horse"), nil)

	p := requireProblem(t, r, http.StatusInternalServerError, "/v1/signup")
	require.NotContains(t, p.Detail, "refused", "a 500 reveals nothing of its cause")
	require.Zero(t, b.count(t, "users"), "the user must roll back with its outbox row")
	require.Zero(t, b.count(t, "outbox"))
	require.Contains(t, b.logs.String(), "outbox insert refused by test", "the cause is logged")
}

func TestSignupWritesExactlyOneMatchingOutboxRowPerUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type sent struct {
		email, name, password, requestID string
		withTrace                        bool
	}
	requests := make([]sent, n)
	responses := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		requests[i] = sent{
			email:     fmt.Sprintf("  User%d@Example.com ", i),
			name:      fmt.Sprintf(" User %d ", i),
			password:  fmt.Sprintf("secret-password-%d", i),
			requestID: fmt.Sprintf("req-%d", i),
			withTrace: i%2 == 0,
		}
		wg.Go(func() {
			h := map[string]string{api.RequestIDHeader: requests[i].requestID}
			if requests[i].withTrace {
				h["Traceparent"] = traceparent
			}
			responses[i] = b.signup(t, signupBody(t, requests[i].email, requests[i].name, requests[i].password), h)
		})
	}
	wg.Wait()

	ctx := context.Background()
	for i, r := range responses {
		req := requests[i]
		u := requireCreated(t, r)
		require.Equal(t, strings.TrimSpace(req.email), u.Email, "emails are stored trimmed, case kept")
		require.Equal(t, strings.TrimSpace(req.name), u.Name)
		require.Equal(t, req.requestID, r.header.Get(api.RequestIDHeader))

		var (
			count    int
			topic    string
			payload  []byte
			metadata map[string]string
			hash     string
		)
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE key = $1`, u.ID).Scan(&count))
		require.Equal(t, 1, count, "exactly one outbox row per created user")
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT topic, payload, metadata FROM outbox WHERE key = $1`, u.ID).
			Scan(&topic, &payload, &metadata))
		require.Equal(t, event.TopicUserCreated, topic)
		var ev event.UserCreated
		require.NoError(t, json.Unmarshal(payload, &ev))
		require.Equal(t, u.ID, ev.UserID.String())
		require.Equal(t, u.Email, ev.Email)
		require.Equal(t, u.Name, ev.Name)
		createdAt, err := time.Parse(time.RFC3339Nano, u.CreatedAt)
		require.NoError(t, err)
		require.True(t, createdAt.Equal(ev.CreatedAt))

		require.NoError(t, b.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&hash))
		match, err := argon2id.ComparePasswordAndHash(req.password, hash)
		require.NoError(t, err)
		require.True(t, match, "the stored hash verifies the password")
		for _, secret := range []string{req.password, hash, "argon2", "password"} {
			require.NotContains(t, string(payload), secret, "the event must carry no password data")
			require.NotContains(t, string(r.body), secret, "the response must carry no password data")
		}

		require.Equal(t, req.requestID, metadata[outbox.MetadataCorrelationID])
		if req.withTrace {
			require.Equal(t, traceparent, metadata[outbox.MetadataTraceparent])
		} else {
			require.NotContains(t, metadata, outbox.MetadataTraceparent)
		}
	}
	require.Equal(t, n, b.count(t, "users"))
	require.Equal(t, n, b.count(t, "outbox"))
}

func TestSignupSameEmailConcurrentlyCreatesOneUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 50
	variants := []string{"same.person@example.com", "Same.Person@Example.com", "  SAME.PERSON@EXAMPLE.COM", "same.person@EXAMPLE.com\t"}
	statuses := make([]int, n)
	problems := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := b.signup(t, signupBody(t, variants[i%len(variants)], "Same Person", "correct horse battery"), nil)
			statuses[i], problems[i] = r.status, r
		})
	}
	wg.Wait()

	created := 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			p := requireProblem(t, problems[i], http.StatusConflict, "/v1/signup")
			require.Equal(t, problem.TypeEmailTaken, p.Type)
		default:
			t.Fatalf("request %d: status %d, body %s", i, s, problems[i].body)
		}
	}
	require.Equal(t, 1, created, "exactly one 201")
	require.Equal(t, 1, b.count(t, "users"))
	require.Equal(t, 1, b.count(t, "outbox"))
}

func TestGetUserReturnsTheCreatedUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.signup(t, signupBody(t, "grace@example.com", "Grace Hopper", "correct horse"), nil)
	u := requireCreated(t, created)

	got := b.do(t, http.MethodGet, created.header.Get("Location"), "", nil)
	require.Equal(t, http.StatusOK, got.status)
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.JSONEq(t, string(created.body), string(got.body), "GET shows the user as signup did")
	require.NotContains(t, string(got.body), "password")
	require.NotContains(t, string(got.body), "argon2")
	require.Equal(t, "grace@example.com", u.Email)
}

func TestSignupDefaultConfigHashesWithOWASPParams(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.Argon2 = api.Config{}.Argon2 })
	u := requireCreated(t, b.signup(t, signupBody(t, "owasp@example.com", "Owasp", "correct horse"), nil))
	var hash string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&hash))
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$"), "hash %q", hash)
}

func TestSignupPastRequestTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.RequestTimeout = time.Nanosecond })
	r := b.signup(t, signupBody(t, "late@example.com", "Late", "correct horse"), nil)
	requireProblem(t, r, http.StatusServiceUnavailable, "/v1/signup")
	require.Zero(t, b.count(t, "users"))
}
