package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestClientLimiterLimitsEachClientAlone(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newClientLimiter(2, 100, clock.now)

	require.Zero(t, l.reserve("a"))
	require.Zero(t, l.reserve("a"))
	delay := l.reserve("a")
	require.Equal(t, 30*time.Second, delay, "2 per minute: one token every 30 s")
	require.Equal(t, 30*time.Second, l.reserve("a"), "a refused request takes no token")
	require.Zero(t, l.reserve("b"), "another client has its own bucket")

	clock.advance(30 * time.Second)
	require.Zero(t, l.reserve("a"))
	require.Positive(t, l.reserve("a"))
}

func TestClientLimiterEvictsIdleClients(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newClientLimiter(1, 100, clock.now)
	for _, c := range []string{"a", "b", "c"} {
		require.Zero(t, l.reserve(c))
	}
	require.Equal(t, 3, l.tracked())

	clock.advance(time.Minute)
	require.Zero(t, l.reserve("a"), "a full bucket again after a minute")
	require.Equal(t, 1, l.tracked(), "idle clients are dropped on the next sweep")
}

func TestClientLimiterBoundsMemory(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newClientLimiter(1, 3, clock.now)
	for i := range 50 {
		l.reserve(string(rune('a' + i)))
		require.LessOrEqual(t, l.tracked(), 3)
	}
}

func TestClientAddress(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"192.0.2.7:4242":              "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:4242": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":    "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:4242":     "192.0.2.7",
		"not-an-address":              "not-an-address",
	}
	for remote, want := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		require.Equal(t, want, clientAddress(r, nil), "%s: X-Forwarded-For ignored without trusted proxies", remote)
	}
}
