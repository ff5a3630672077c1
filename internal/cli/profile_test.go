package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestAPIStartsWithoutTheBrokerAndServesProfilesOnceItIsUp runs `outboxd
// api` while its NATS is down: it starts and signs up (503 for the
// profile), and once NATS, the relay and `worker --handlers profile` run,
// the profile the worker made from the signup is read over the broker.
func TestAPIStartsWithoutTheBrokerAndServesProfilesOnceItIsUp(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	apiAddr, relayAdmin, workerAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	natsPort, releasePort := holdPort(t)
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	brokerArgs := []string{"--database-url", dsn, "--broker", "nats", "--broker-url", natsURL}
	stopAPI := start(t, append([]string{"api", "--http-addr", apiAddr, "--profile-request-timeout", "1s",
		"--argon2-memory-kib", "64", "--argon2-iterations", "1"}, brokerArgs...)...)

	var user struct{ ID string }
	require.Eventually(t, func() bool {
		resp, err := http.Post("http://"+apiAddr+"/v1/signup", "application/json",
			strings.NewReader(`{"email":"ann@example.com","name":"Ann","password":"correct horse"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, "signup works while the broker is down")
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&user))
		return true
	}, 10*time.Second, 20*time.Millisecond)
	profileURL := "http://" + apiAddr + "/v1/users/" + user.ID + "/profile"
	status, _ := get(t, profileURL)
	require.Equal(t, http.StatusServiceUnavailable, status, "no broker, no profile service")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	releasePort()
	_, stopNATS, err := broker.StartEmbeddedNATSOn(ctx, t.TempDir(), natsPort)
	require.NoError(t, err)
	t.Cleanup(stopNATS)
	stopRelay := start(t, append([]string{"relay", "--admin-addr", relayAdmin}, brokerArgs...)...)
	stopWorker := start(t, append([]string{"worker", "--admin-addr", workerAdmin, "--handlers", "profile"}, brokerArgs...)...)

	var body []byte
	require.Eventually(t, func() bool {
		status, body = get(t, profileURL)
		return status == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "the profile is read over the broker once everything runs")
	var profile map[string]any
	require.NoError(t, json.Unmarshal(body, &profile))
	require.Equal(t, user.ID, profile["user_id"])
	require.Equal(t, "Ann", profile["display_name"])

	for name, stop := range map[string]func() (int, string){"api": stopAPI, "relay": stopRelay, "worker": stopWorker} {
		code, errOut := stop()
		require.Equal(t, 0, code, "%s: %s", name, errOut)
		require.NotContains(t, errOut, "correct horse", "no password in logs")
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// holdPort keeps a loopback port busy with a listener that hangs up on
// every connection, as a host whose broker is down does, so that no other
// test's server takes the port meanwhile; release frees it.
func holdPort(t *testing.T) (port int, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = ln.Close()
			<-done
		})
	}
	t.Cleanup(release)
	return ln.Addr().(*net.TCPAddr).Port, release
}
