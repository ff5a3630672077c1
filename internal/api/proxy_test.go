package api_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestSpoofedXForwardedForIsIgnoredUnlessTheProxyIsTrusted(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	signupFrom := func(t *testing.T, b *testBundle, xff string) response {
		return b.signup(t, signupBody(t, fmt.Sprintf("xff%d@example.com", n.Add(1)), "Xff", goodPassword),
			map[string]string{"X-Forwarded-For": xff})
	}

	t.Run("no trusted proxy", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *api.Config) { c.SignupRateLimit = new(1) })
		requireCreated(t, signupFrom(t, b, "198.51.100.1"))
		r := signupFrom(t, b, "198.51.100.2")
		requireProblem(t, r, http.StatusTooManyRequests, "/v1/signup")
		require.NotEmpty(t, r.header.Get("Retry-After"), "a new X-Forwarded-For does not buy a new bucket")
	})

	t.Run("loopback is a trusted proxy", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *api.Config) {
			c.SignupRateLimit = new(1)
			c.TrustedProxies = []string{"127.0.0.0/8", "::1"}
		})
		requireCreated(t, signupFrom(t, b, "198.51.100.1"))
		requireCreated(t, signupFrom(t, b, "198.51.100.2")) // each forwarded client has its own bucket
		r := signupFrom(t, b, "203.0.113.66, 198.51.100.1")
		requireProblem(t, r, http.StatusTooManyRequests, "/v1/signup")
		require.NotEmpty(t, r.header.Get("Retry-After"), "an address forged left of the proxy's entry is not the client")
	})
}

func TestConfigRejectsAMalformedTrustedProxy(t *testing.T) {
	t.Parallel()
	_, err := api.New(pgtest.NewPool(t), api.Config{TrustedProxies: []string{"10.0.0.0/8", "lb.internal"}})
	require.ErrorContains(t, err, "TrustedProxies")
	require.ErrorContains(t, err, "lb.internal")
}
