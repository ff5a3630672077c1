package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/signup"
)

// runSignup measures HTTP signups at each client count, with argon2 as
// configured by default and minimal, against the same transaction issued as
// raw SQL through pgx.
func runSignup(ctx context.Context, e *env) ([]Table, error) {
	configured, err := e.serveAPI(ctx, signup.DefaultParams)
	if err != nil {
		return nil, err
	}
	minimal, err := e.serveAPI(ctx, signup.MinimalParams)
	if err != nil {
		return nil, err
	}
	t := Table{
		Name:     "signup",
		Title:    "signup: HTTP POST /v1/signup vs the same transaction as raw SQL through pgx",
		Baseline: "ceiling",
		Notes: []string{
			fmt.Sprintf("%s per point; clients send their next request when the last is answered; tables truncated before each point", e.cfg.Duration),
			"the API runs in the bench process (loopback HTTP, keep-alive), its HTTP clients too; the ceiling sends the same batch (user insert, outbox insert with NOTIFY: one implicit transaction, one round trip) but skips HTTP, JSON, validation and hashing, and inserts a hash-sized string",
			fmt.Sprintf("API and ceiling share one pool of %d connections; 64 clients queue for them", poolMaxConns),
			fmt.Sprintf("configured argon2id is the default cost (m=%d KiB, t=%d, p=%d), hashed at most GOMAXPROCS at a time; minimal is m=%d KiB, t=%d",
				signup.DefaultParams.MemoryKiB, signup.DefaultParams.Iterations, signup.DefaultParams.Parallelism,
				signup.MinimalParams.MemoryKiB, signup.MinimalParams.Iterations),
		},
	}
	for _, clients := range e.clientCounts() {
		raw, err := e.measure(ctx, fmt.Sprintf("signup raw SQL, %d clients", clients), clients, func(ctx context.Context, w, i int) error {
			return rawSignupTx(ctx, e.pool, w, i)
		})
		if err != nil {
			return nil, err
		}
		results := map[string]loopResult{}
		for _, v := range []struct {
			name string
			url  string
		}{{"minimal argon2", minimal}, {"configured argon2", configured}} {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients,
				DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			}}
			res, err := e.measure(ctx, fmt.Sprintf("signup HTTP %s, %d clients", v.name, clients), clients, func(ctx context.Context, w, i int) error {
				_, email := newUser(w, i)
				return postSignup(ctx, client, v.url, email)
			})
			client.CloseIdleConnections()
			if err != nil {
				return nil, err
			}
			results[v.name] = res
		}
		for _, name := range []string{"minimal argon2", "configured argon2"} {
			res := results[name]
			t.Rows = append(t.Rows,
				Row{Figure: fmt.Sprintf("signups/s, %s, %d clients", name, clients), Unit: "msg/s", Ours: res.rate(), Baseline: raw.rate()},
				Row{Figure: fmt.Sprintf("p50, %s, %d clients", name, clients), Unit: "ms", Ours: res.lat.p50, Baseline: raw.lat.p50, LowerIsBetter: true},
				Row{Figure: fmt.Sprintf("p99, %s, %d clients", name, clients), Unit: "ms", Ours: res.lat.p99, Baseline: raw.lat.p99, LowerIsBetter: true},
			)
		}
	}
	return []Table{t}, nil
}

// measure resets the tables and runs op in a closed loop with progress.
func (e *env) measure(ctx context.Context, label string, workers int, op func(ctx context.Context, w, i int) error) (loopResult, error) {
	if err := e.resetTables(ctx); err != nil {
		return loopResult{}, err
	}
	var count atomic.Int64
	stop := progress(e.cfg.Progress, label, 0, &count)
	res, err := closedLoop(ctx, workers, e.cfg.Duration, &count, op)
	stop()
	if err != nil {
		return loopResult{}, fmt.Errorf("%s: %w", label, err)
	}
	return res, nil
}

// serveAPI serves the API with argon2 params on a loopback port until ctx
// ends and returns its base URL.
func (e *env) serveAPI(ctx context.Context, params signup.Params) (string, error) {
	srv, err := api.New(e.pool, api.Config{
		Addr:            "127.0.0.1:0",
		SignupRateLimit: new(0),
		Argon2:          params,
		Logger:          e.cfg.Logger,
	})
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	e.closers = append(e.closers, func() { cancel(); <-done })
	return "http://" + ln.Addr().String(), nil
}

// postSignup signs a user up and requires a 201.
func postSignup(ctx context.Context, client *http.Client, baseURL, email string) error {
	body := fmt.Appendf(nil, `{"email":%q,"name":"Bench User","password":"correct horse battery staple"}`, email)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/signup", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post signup: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("post signup: status %d", resp.StatusCode)
	}
	return nil
}
