package console_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/console"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/testlog"
)

// testConsole is a console served on a loopback port, logged in to its
// database as a member of the console's role.
type testConsole struct {
	url   string // its root, prefix included, with a trailing slash
	host  string // host:port
	owner *pgxpool.Pool
	pool  *pgxpool.Pool // the console's
	dsn   string        // the console's, with its password
	logs  *testlog.Buffer
}

// startConsole serves a console for t on a fresh database; cfg's Addr is
// set to the port it gets.
func startConsole(t *testing.T, cfg console.Config) *testConsole {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	return startConsoleOn(t, dsn, cfg)
}

func startConsoleOn(t *testing.T, dsn string, cfg console.Config) *testConsole {
	t.Helper()
	consoleDSN := pgtest.LoginAs(t, dsn, consoleRole)
	tc := &testConsole{owner: pgtest.Connect(t, dsn), pool: pgtest.Connect(t, consoleDSN), dsn: consoleDSN, logs: &testlog.Buffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Addr = ln.Addr().String()
	cfg.Logger = slog.New(slog.NewTextHandler(tc.logs, nil))
	con, err := console.New(tc.pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- con.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	tc.url, tc.host = con.URL(ln), ln.Addr().String()
	return tc
}

// client is a browser-like client of the console: it keeps cookies and
// says where its requests come from, as a browser does.
type client struct {
	t    *testing.T
	http *http.Client
	tc   *testConsole
	user string
	pass string
}

func (tc *testConsole) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, tc: tc, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, string(b)
}

// get fetches path (relative to the console's root).
func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.tc.url+path, nil)
	require.NoError(c.t, err)
	return c.do(req)
}

// post submits form to path with the headers of a same-origin browser
// form, plus extra (which may override them).
func (c *client) post(path string, form url.Values, extra map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.tc.url+path, strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+c.tc.host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range extra {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return c.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the token of a page's forms.
func (c *client) csrf(page string) string {
	c.t.Helper()
	_, body := c.get(page)
	m := csrfInput.FindStringSubmatch(body)
	require.NotNil(c.t, m, "the page has a form with a CSRF token")
	return m[1]
}

func TestOverviewWithoutMetricsSaysWhy(t *testing.T) {
	t.Parallel()
	tc := startConsole(t, console.Config{})
	var o console.Overview
	resp, body := tc.client(t).get("api/overview")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(body), &o))
	require.Len(t, o.Charts.Charts, 1)
	require.Equal(t, "Backlog, read from SQL", o.Charts.Charts[0].Title)
	require.Len(t, o.Charts.Notes, 1)
	require.Contains(t, o.Charts.Notes[0], "CONSOLE_RELAY_METRICS and CONSOLE_WORKER_METRICS are not set")
	require.Equal(t, "0", o.Tiles["pending"])
	require.Equal(t, "unknown (no relay)", o.Tiles["capture"])
}

func TestOverviewSaysWhenMetricsDoNotAnswer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String() + "/metrics"
	require.NoError(t, ln.Close()) // nothing answers there now
	tc := startConsole(t, console.Config{RelayMetrics: dead, SampleInterval: 50 * time.Millisecond})
	var o console.Overview
	waitFor(t, 10*time.Second, func() bool {
		_, body := tc.client(t).get("api/overview")
		require.NoError(t, json.Unmarshal([]byte(body), &o))
		return len(o.Charts.Notes) == 2
	}, func() string { return strings.Join(o.Charts.Notes, " | ") })
	require.Contains(t, o.Charts.Notes[1], "The relay's /metrics did not answer its last sample")
	require.Len(t, o.Charts.Charts, 3, "throughput, latency and backlog: the lines break where samples fail")
	require.Equal(t, "enqueue → publish, mean of each interval", o.Charts.Charts[1].Series[0].Label,
		"the latency chart leads with the relay's own per-message latency")
}
