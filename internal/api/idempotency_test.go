package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/problem"
)

func TestIdempotentRetryReplaysTheFirstResponse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := signupBody(t, "ada@example.com", "Ada", goodPassword)
	key := map[string]string{"Idempotency-Key": "signup-ada-1"}

	first := b.signup(t, body, key)
	requireCreated(t, first)
	second := b.signup(t, body, key)

	require.Equal(t, first.status, second.status)
	require.Equal(t, string(first.body), string(second.body), "byte for byte")
	require.Equal(t, first.header.Get("Location"), second.header.Get("Location"))
	require.Equal(t, first.header.Get("Content-Type"), second.header.Get("Content-Type"))
	require.Equal(t, "true", second.header.Get("Idempotent-Replayed"))
	require.Empty(t, first.header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, b.count(t, "users"), "no second user")
	require.Equal(t, 1, b.count(t, "outbox"), "no second event")

	metrics := string(b.do(t, http.MethodGet, "/metrics", "", nil).body)
	require.Contains(t, metrics, "\noutboxd_signups_total 1\n", "a replay is not a signup")
}

func TestIdempotencyKeyWithDifferentBodyIs422(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := map[string]string{"Idempotency-Key": "signup-key"}
	requireCreated(t, b.signup(t, signupBody(t, "ada@example.com", "Ada", goodPassword), key))

	for name, body := range map[string]string{
		"other user":   signupBody(t, "bob@example.com", "Bob", goodPassword),
		"invalid body": `{"email":"nope"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := requireProblem(t, b.signup(t, body, key), http.StatusUnprocessableEntity, "/v1/signup")
			require.Equal(t, problem.TypeIdempotencyReused, p.Type)
		})
	}
	t.Cleanup(func() { require.Equal(t, 1, b.count(t, "users")) })
}

func TestIdempotencyKeyIsNotStoredForAFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := map[string]string{"Idempotency-Key": "fix-and-retry"}
	requireProblem(t, b.signup(t, signupBody(t, "ada@example.com", "", goodPassword), key), http.StatusUnprocessableEntity, "/v1/signup")
	// Only a 201 is stored: the client may fix its request and reuse the key.
	requireCreated(t, b.signup(t, signupBody(t, "ada@example.com", "Ada", goodPassword), key))
	require.Zero(t, b.count(t, "idempotency_keys WHERE status <> 201"))
	require.Equal(t, 1, b.count(t, "idempotency_keys"))
}

func TestConcurrentRequestsWithOneKeyCreateOneUser(t *testing.T) {
	t.Parallel()
	const n = 16

	t.Run("same body", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := signupBody(t, "ada@example.com", "Ada", goodPassword)
		responses := make([]response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { responses[i] = b.signup(t, body, map[string]string{"Idempotency-Key": "one-key"}) })
		}
		wg.Wait()
		first := requireCreated(t, responses[0])
		for _, r := range responses {
			// Without the key claimed first inside the transaction, the
			// losers would answer 409 for their own email.
			require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
			require.Equal(t, string(responses[0].body), string(r.body))
		}
		require.Equal(t, 1, b.count(t, "users"))
		require.Equal(t, 1, b.count(t, "outbox"))
		require.NotEmpty(t, first.ID)
	})

	t.Run("different bodies", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := signupBody(t, fmt.Sprintf("user%d@example.com", i), "User", goodPassword)
				statuses[i] = b.signup(t, body, map[string]string{"Idempotency-Key": "shared-key"}).status
			})
		}
		wg.Wait()
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusUnprocessableEntity: n - 1}, counts)
		require.Equal(t, 1, b.count(t, "users"), "one key, one user")
		require.Equal(t, 1, b.count(t, "outbox"))
	})
}

func TestIdempotencyKeysAreDistinct(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, key := range []string{"a", strings.Repeat("k", 255)} {
		body := signupBody(t, fmt.Sprintf("u%d@example.com", i), "U", goodPassword)
		requireCreated(t, b.signup(t, body, map[string]string{"Idempotency-Key": key}))
	}
	require.Equal(t, 2, b.count(t, "users"))
}
