package signup

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// BenchmarkSignupTx measures what the outbox adds to a signup transaction,
// sent as the handler sends it: one batch, one implicit transaction, one
// round trip. user_only commits the user's INSERT alone; user_and_outbox
// adds its user.created message (outbox.EnqueueBatch) to the same batch.
// Each runs on its own fresh database, one transaction at a time, so ns/op
// is one transaction's latency and the ratio of the two is the outbox's
// overhead.
//
//	go test -run '^$' -bench BenchmarkSignupTx -benchtime 3s ./internal/signup/
func BenchmarkSignupTx(b *testing.B) {
	ctx := context.Background()
	hasher, err := NewHasher(MinimalParams, 0)
	if err != nil {
		b.Fatal(err)
	}
	hash, err := hasher.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		enqueue bool
	}{
		{"user_only", false},
		{"user_and_outbox", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pool := pgtest.NewPool(b)
			i := 0
			for b.Loop() {
				i++
				user, err := newUser(Input{Email: fmt.Sprintf("bench%d@example.com", i), Name: "Bench User"})
				if err != nil {
					b.Fatal(err)
				}
				batch := &pgx.Batch{}
				if bc.enqueue {
					err = queueCreateUser(batch, outbox.Writer{}, user, hash, Trace{CorrelationID: "bench"})
				} else {
					queueInsertUser(batch, user, hash)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := pool.SendBatch(ctx, batch).Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
