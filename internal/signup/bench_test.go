package signup

import (
	"context"
	"fmt"
	"testing"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// BenchmarkSignupTx measures what the outbox adds to a signup transaction:
// the same INSERT of a user committed alone (user_only) and with its
// user.created message (user_and_outbox). Each runs on its own fresh
// database, one transaction at a time, so ns/op is one transaction's
// latency and the ratio of the two is Enqueue's overhead.
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
				in := Input{Email: fmt.Sprintf("bench%d@example.com", i), Name: "Bench User", Password: "unused"}
				tx, err := pool.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				user, err := insertUserTx(ctx, tx, in, hash)
				if err != nil {
					b.Fatal(err)
				}
				if bc.enqueue {
					if err := enqueueUserCreatedTx(ctx, tx, user, Trace{CorrelationID: "bench"}); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
