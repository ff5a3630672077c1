package worker_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/worker"
)

func TestHeld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		cfg                  worker.Config
		profile, audit, mail int
		nestjs               int
	}{
		{"defaults: three full batches for the batch writers, one for email", worker.Config{}, 300, 300, 100, 16},
		{"concurrency above the batches", worker.Config{Concurrency: 500, BatchSize: 10}, 500, 500, 500, 500},
		{"one message a transaction: concurrency alone", worker.Config{Concurrency: 1, BatchSize: 1}, 1, 1, 1, 1},
		{"no batches, several at once", worker.Config{Concurrency: 8, BatchSize: 1}, 8, 8, 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.profile, tc.cfg.Held(worker.HandlerProfile))
			require.Equal(t, tc.audit, tc.cfg.Held(worker.HandlerAudit))
			require.Equal(t, tc.mail, tc.cfg.Held(worker.HandlerEmail))
			require.Equal(t, tc.nestjs, tc.cfg.Held(worker.HandlerNestJS), "nestjs: concurrency alone")
		})
	}
}
