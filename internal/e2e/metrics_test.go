package e2e_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/admin"
	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/relay"
)

// TestMetricsPassPrometheusLint scrapes /metrics with the API, the relay and
// the worker registered on one registry and runs promlint over it: the same
// checks as `promtool check metrics`, which also runs when installed.
func TestMetricsPassPrometheusLint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := pgtest.NewPool(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := api.New(pool, api.Config{Registry: reg, Argon2: signup.MinimalParams, SignupRateLimit: new(0)})
	require.NoError(t, err)
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer pubsub.Close()
	r, err := relay.New(pool, pubsub, relay.Config{Registerer: reg, MetricsInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	w, err := worker.New(pool, func(context.Context, string) (message.Subscriber, error) { return pubsub, nil },
		mail.LogMailer{}, worker.Config{Registerer: reg})
	require.NoError(t, err)
	done := make(chan struct{}, 2)
	go func() { _ = r.Run(ctx); done <- struct{}{} }()
	go func() { _ = w.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	// One signup, so that labelled series exist.
	api := httptest.NewServer(srv.Handler())
	defer api.Close()
	resp, err := http.Post(api.URL+"/v1/signup", "application/json",
		strings.NewReader(`{"email":"lint@example.com","name":"Lint","password":"correct horse"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	adminSrv := httptest.NewServer(admin.Handler(reg, nil))
	defer adminSrv.Close()
	var body []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get(adminSrv.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		return bytes.Contains(body, []byte(`outboxd_worker_messages_handled_total{handler="audit"} 1`)) &&
			bytes.Contains(body, []byte("outboxd_relay_published_total 1"))
	}, 20*time.Second, 20*time.Millisecond, "metrics of all three parts")

	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint problems")
	for _, name := range []string{"outboxd_http_requests_total", "outboxd_relay_backlog", "outboxd_relay_leader",
		"outboxd_relay_horizon_age_seconds", "outboxd_worker_handler_duration_seconds_bucket"} {
		require.Contains(t, string(body), name)
	}

	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics: %s", out)
	}
}
