package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
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
	natsPort := freePort(t)
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

func freePort(t *testing.T) int {
	t.Helper()
	addr := freeAddr(t)
	port, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	require.NoError(t, err)
	return port
}
