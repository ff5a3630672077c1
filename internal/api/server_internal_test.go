package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/problem"
	"github.com/outboxd/outboxd/internal/signup"
)

func TestServeFinishesInFlightRequestsThenReturnsNil(t *testing.T) {
	t.Parallel()
	srv, err := New(pgtest.NewPool(t), Config{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel()

	// Shutdown stops accepting connections at once...
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond)
	// ...but waits for the request in flight.
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}
	close(release)
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "finished", r.body)
	select {
	case err := <-served:
		require.NoError(t, err, "a graceful shutdown returns nil")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
}

func TestListenAndServeFailsOnPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	srv, err := New(pgtest.NewPool(t), Config{Addr: ln.Addr().String(), Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	err = srv.ListenAndServe(context.Background())
	require.ErrorContains(t, err, "api listen on "+ln.Addr().String())
}

func TestPanicBecomesLogged500Problem(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(requestIDHandler{slog.NewJSONHandler(&logs, nil)})
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	h := requestID(observe(logger, m)(recoverPanics(logger)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))))
	ts := httptest.NewServer(h)
	defer ts.Close()

	req, err := http.NewRequest(http.MethodGet, ts.URL+"/x", nil)
	require.NoError(t, err)
	req.Header.Set(RequestIDHeader, "req-panic")
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"))
	var p problem.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, http.StatusInternalServerError, p.Status)

	var sawPanic, sawAccess bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		require.Equal(t, "req-panic", rec["request_id"])
		switch rec["msg"] {
		case "panic serving request":
			sawPanic = true
			require.Equal(t, "boom", rec["panic"])
		case "http request":
			sawAccess = true
			require.Equal(t, float64(500), rec["status"], "the access log sees the 500")
		}
	}
	require.True(t, sawPanic)
	require.True(t, sawAccess)
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	_, err := New(pool, Config{SignupRateLimit: new(-1), RequestTimeout: -time.Second})
	require.ErrorContains(t, err, "SignupRateLimit")
	require.ErrorContains(t, err, "RequestTimeout")
	_, err = New(pool, Config{Argon2: signup.Params{SaltLength: 3}})
	require.ErrorContains(t, err, "Argon2")
	_, err = New(nil, Config{})
	require.Error(t, err)
}
