package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/console"
	"github.com/outboxd/outboxd/internal/deadletter"
)

func TestConfigRefusesAnOpenConsole(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:9092", ":9092", "192.0.2.1:9092", "example.com:9092"} {
		err := console.Config{Addr: addr}.WithDefaults().Validate()
		require.ErrorIs(t, err, console.ErrPasswordRequired, addr)
		require.Contains(t, err.Error(), "set CONSOLE_PASSWORD")
		require.NotContains(t, err.Error(), "\n", "one line")
		require.NoError(t, console.Config{Addr: addr, Password: "secret"}.WithDefaults().Validate())
	}
	for _, addr := range []string{"127.0.0.1:9092", "[::1]:9092", "localhost:9092", "127.0.0.2:0"} {
		require.NoError(t, console.Config{Addr: addr}.WithDefaults().Validate(), addr)
	}
	err := console.Config{RelayMetrics: "localhost:9090"}.WithDefaults().Validate()
	require.ErrorContains(t, err, "CONSOLE_RELAY_METRICS=localhost:9090")
}

func TestGuards(t *testing.T) {
	t.Parallel()
	const password = "console-pw-7f3a9c"
	tc := startConsole(t, console.Config{Password: password, PathPrefix: "/ops/", Hosts: []string{"console.example"}})
	require.True(t, strings.HasSuffix(tc.url, "/ops/"), tc.url)

	t.Run("BasicAuth", func(t *testing.T) {
		t.Parallel()
		c := tc.client(t)
		resp, _ := c.get("")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
		c.user, c.pass = "admin", password+"x"
		resp, _ = c.get("")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		c.user, c.pass = "root", password
		resp, _ = c.get("")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		c.user, c.pass = "admin", password
		resp, body := c.get("")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotContains(t, body, password, "no secret is rendered")
	})

	t.Run("HostHeader", func(t *testing.T) {
		t.Parallel()
		c := tc.client(t)
		c.user, c.pass = "admin", password
		for host, want := range map[string]int{
			tc.host:                    http.StatusOK,
			"localhost:1234":           http.StatusOK,
			"[::1]:80":                 http.StatusOK,
			"console.example":          http.StatusOK,
			"CONSOLE.example:443":      http.StatusOK,
			"rebound.attacker.example": http.StatusMisdirectedRequest,
			"console.example.evil":     http.StatusMisdirectedRequest,
		} {
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			require.NoError(t, err)
			req.Host = host
			resp, _ := c.do(req)
			require.Equal(t, want, resp.StatusCode, host)
		}
	})

	t.Run("HeadersAndPrefix", func(t *testing.T) {
		t.Parallel()
		c := tc.client(t)
		c.user, c.pass = "admin", password
		resp, body := c.get("")
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'")
		require.NotContains(t, csp, "unsafe-inline")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.NotContains(t, body, "<script>", "no inline script")
		for _, link := range []string{`href="/ops/deadletters"`, `src="/ops/static/console.js"`, `href="/ops/static/console.css"`, `data-api="/ops/api/overview"`} {
			require.Contains(t, body, link)
		}
		require.NotRegexp(t, `(href|src|action)="/[^o]`, body, "every link is under the prefix")
		for path, want := range map[string]int{"static/console.js": 200, "static/console.css": 200, "api/overview": 200, "nothing": 404} {
			resp, _ := c.get(path)
			require.Equal(t, want, resp.StatusCode, path)
		}
		req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(tc.url, "/"), nil)
		require.NoError(t, err)
		resp, _ = c.do(req)
		require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
		require.Equal(t, "/ops/", resp.Header.Get("Location"))
	})

	t.Run("PostNeedsTokenAndSameOrigin", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		id, err := deadletter.Add(ctx, tc.owner, deadletter.DeadLetter{Handler: "email", MessageID: uuid.New(), Topic: "t", Error: "e", Attempts: 1})
		require.NoError(t, err)
		c := tc.client(t)
		c.user, c.pass = "admin", password
		token := c.csrf("deadletters")
		sel := "handler:" + strconv.FormatInt(id, 10)
		form := url.Values{"sel": {sel}}

		resp, _ := c.post("deadletters/purge", form, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "no token")
		form.Set("csrf", token+"x")
		resp, _ = c.post("deadletters/purge", form, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "wrong token")
		form.Set("csrf", token)
		for _, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "same-site"},
			{"Sec-Fetch-Site": "", "Origin": "http://attacker.example"},
			{"Sec-Fetch-Site": "", "Origin": "", "Referer": "http://attacker.example/ops/"},
			{"Sec-Fetch-Site": "", "Origin": ""},
		} {
			resp, _ = c.post("deadletters/purge", form, hdr)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "%v", hdr)
		}
		other := tc.client(t) // another browser: its own token
		other.user, other.pass = "admin", password
		other.csrf("deadletters")
		resp, _ = other.post("deadletters/purge", form, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "another session's token")
		req, err := http.NewRequest(http.MethodGet, tc.url+"deadletters/purge?sel="+sel+"&csrf="+token, nil)
		require.NoError(t, err)
		resp, _ = c.do(req)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "GET changes nothing")

		n, err := deadletter.Count(ctx, tc.owner, deadletter.Filter{})
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "nothing was purged")

		resp, _ = c.post("deadletters/purge", form, map[string]string{"Sec-Fetch-Site": "", "Origin": "", "Referer": tc.url + "deadletters"})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		n, err = deadletter.Count(ctx, tc.owner, deadletter.Filter{})
		require.NoError(t, err)
		require.Zero(t, n, "a same-origin POST with its token purges")
	})
}
