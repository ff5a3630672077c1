package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestDevRunsEverythingAndStopsOnSIGTERM starts `outboxd dev` as a process
// against a database that does not exist yet: dev creates and migrates it,
// and a signup over HTTP leads to the logged welcome email, a profile and an
// audit row, and the profile is read back through GET
// /v1/users/{id}/profile. SIGTERM then stops it with exit code 0 within 5 s.
func TestDevRunsEverythingAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabaseURL(t)
	httpAddr, adminAddr, consoleAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	args, err := json.Marshal([]string{"dev",
		"--database-url", dsn, "--http-addr", httpAddr, "--admin-addr", adminAddr, "--console-addr", consoleAddr,
		"--data-dir", t.TempDir(), "--argon2-memory-kib", "64", "--argon2-iterations", "1",
	})
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildArgs+"="+string(args), "BROKER_URL=", "BROKER=nats")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); stderrW.Close() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	logs := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stderrR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
		close(logs)
	}()

	banner := bufio.NewScanner(stdout)
	require.True(t, banner.Scan(), "dev prints its banner")
	require.Contains(t, banner.Text(), "http://"+httpAddr)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	resp, err := http.Post("http://"+httpAddr+"/v1/signup", "application/json",
		strings.NewReader(`{"email":"dev@example.com","name":"Dev <Ann>","password":"correct horse"}`))
	require.NoError(t, err)
	var user struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&user))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	deadline := time.After(20 * time.Second)
	for mailed := false; !mailed; {
		select {
		case line, ok := <-logs:
			require.True(t, ok, "dev exited before logging the welcome email")
			mailed = strings.Contains(line, "mail (not sent") && strings.Contains(line, "to=dev@example.com") &&
				strings.Contains(line, "Welcome to outboxd")
			require.NotContains(t, line, "correct horse", "no password in logs")
		case <-deadline:
			t.Fatal("no welcome email logged within 20s")
		}
	}

	pool := pgtest.Connect(t, dsn)
	require.Eventually(t, func() bool {
		var profiles, audits int
		require.NoError(t, pool.QueryRow(context.Background(),
			`SELECT (SELECT count(*) FROM profiles WHERE user_id = $1), (SELECT count(*) FROM audit_log WHERE subject = $1::text)`,
			user.ID).Scan(&profiles, &audits))
		return profiles == 1 && audits == 1
	}, 20*time.Second, 20*time.Millisecond, "one profile and one audit row")

	// The API reads the profile from the worker's profile service over the
	// embedded NATS.
	resp, err = http.Get("http://" + httpAddr + "/v1/users/" + user.ID + "/profile")
	require.NoError(t, err)
	var profile struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"display_name"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&profile))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, user.ID, profile.UserID)
	require.Equal(t, "Dev <Ann>", profile.DisplayName)

	// The console is served too, sampling the relay's and worker's metrics.
	resp, err = http.Get("http://" + consoleAddr + "/api/overview")
	require.NoError(t, err)
	var overview struct{ Charts struct{ Notes []string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&overview))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, note := range overview.Charts.Notes {
		require.NotContains(t, note, "not set", "dev gives the console both /metrics")
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "SIGTERM exits 0")
	case <-time.After(5 * time.Second):
		t.Fatal("dev did not exit within 5s of SIGTERM")
	}
}
