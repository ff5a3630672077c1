package prune

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/testlog"
)

func TestInterval(t *testing.T) {
	t.Parallel()
	require.Equal(t, 6*time.Minute, Interval(time.Hour))
	require.Equal(t, time.Hour, Interval(7*24*time.Hour), "capped")
}

// TestRunPrunesAtOnceThenOnSchedule also checks that a failed pass is
// logged and the next one runs, and that Run stops with its context.
func TestRunPrunesAtOnceThenOnSchedule(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls []time.Duration
	)
	passes := make(chan struct{}, 10)
	task := Task{Table: "things", OlderThan: 2 * time.Hour, Delete: func(_ context.Context, olderThan time.Duration) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, olderThan)
		select {
		case passes <- struct{}{}:
		default: // the test has seen enough passes
		}
		if len(calls) == 2 {
			return 0, errors.New("database away")
		}
		return 3, nil
	}}
	var logs testlog.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(&logs, nil)), task, time.Millisecond) }()
	for range 3 {
		select {
		case <-passes:
		case <-time.After(5 * time.Second):
			t.Fatal("no pass within 5s")
		}
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2*time.Hour, calls[0])
	require.Contains(t, logs.String(), "pruned old rows")
	require.Contains(t, logs.String(), "database away", "a failed pass is logged")
}
