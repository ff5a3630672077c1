package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync/atomic"
	"time"
)

// benchmarks are the sub-benchmarks by name.
var benchmarks = map[string]func(context.Context, *env) ([]Table, error){
	"signup":    runSignup,
	"enqueue":   runEnqueue,
	"relay":     runRelay,
	"latency":   runLatency,
	"forwarder": runForwarder,
	"capture":   runCapture,
	"idle":      runIdle,
	"flat":      runFlat,
	"worker":    runWorker,
}

// Names lists the benchmarks Run knows, sorted.
func Names() []string {
	names := make([]string, 0, len(benchmarks))
	for n := range benchmarks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs the benchmark called name with cfg on a fresh database, prints
// its tables to cfg.Out and saves them in cfg.OutDir.
func Run(ctx context.Context, name string, cfg Config) ([]Table, error) {
	fn, ok := benchmarks[name]
	if !ok {
		return nil, fmt.Errorf("unknown benchmark %q (one of %v)", name, Names())
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	tables, err := fn(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", name, err)
	}
	for _, t := range tables {
		if err := t.WriteText(cfg.Out); err != nil {
			return nil, err
		}
		if err := t.save(cfg.OutDir); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// progress prints label and the count every two seconds until stop is
// called, then the final count with the time taken.
func progress(w io.Writer, label string, total int64, count *atomic.Int64) (stop func()) {
	if w == io.Discard {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	print := func() {
		n := count.Load()
		if total > 0 {
			fmt.Fprintf(w, "%s: %d/%d (%.0f/s)\n", label, n, total, float64(n)/time.Since(start).Seconds())
		} else {
			fmt.Fprintf(w, "%s: %d (%.0f/s)\n", label, n, float64(n)/time.Since(start).Seconds())
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				print()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		print()
	}
}

// clientCounts are the signup benchmark's client counts.
func (e *env) clientCounts() []int {
	if e.cfg.Concurrency > 0 {
		return []int{e.cfg.Concurrency}
	}
	return slices.Clone([]int{1, 16, 64})
}

// concurrency is e.cfg.Concurrency, or def when unset.
func (e *env) concurrency(def int) int {
	if e.cfg.Concurrency > 0 {
		return e.cfg.Concurrency
	}
	return def
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
