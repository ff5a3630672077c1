package cli_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestConsoleRefusesToServeAnyoneWithoutAPassword: beyond loopback, the
// console does not start without CONSOLE_PASSWORD, and says so in one line.
func TestConsoleRefusesToServeAnyoneWithoutAPassword(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		code, _, stderr := run(context.Background(), "console", "--console-addr", addr)
		require.Equal(t, 2, code, stderr)
		require.Contains(t, stderr, "set CONSOLE_PASSWORD")
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	}
}

// TestConsoleServesUntilStopped: `outboxd console` serves its pages, with
// basic auth when a password is set, and stops cleanly.
func TestConsoleServesUntilStopped(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	stop := start(t, "console", "--database-url", dsn, "--console-addr", addr, "--console-password", "pw-1")
	var resp *http.Response
	require.Eventually(t, func() bool {
		var err error
		resp, err = http.Get("http://" + addr + "/")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "pw-1")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "Overview")

	code, stderr := stop()
	require.Equal(t, 0, code, stderr)
}
