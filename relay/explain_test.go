package relay_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// TestExplainClaimAnalyzesTheClaim explains a claim of a backlog: the plan
// is the claim's (ordered by id, limited), executed with buffer counts, and
// claims nothing.
func TestExplainClaimAnalyzesTheClaim(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	msgs := make([]outbox.Message, 20)
	for i := range msgs {
		msgs[i] = msgSeq(fmt.Sprintf("k%d", i%5), i/5)
	}
	enqueue(t, pool, msgs...)

	plan, err := relay.ExplainClaim(ctx, pool, 7)
	require.NoError(t, err)
	require.Contains(t, plan, "Limit")
	require.Contains(t, plan, "actual time=", "ANALYZE ran it")
	require.Contains(t, plan, "rows=7 loops=1", "the limit reached the statement")
	require.Contains(t, plan, "Buffers: shared hit=")
	require.Contains(t, plan, "Execution Time:")
	require.Equal(t, 20, countRows(t, pool, `SELECT count(*) FROM outbox WHERE attempts = 0 AND published_at IS NULL`), "nothing claimed or changed")

	_, err = relay.ExplainClaim(ctx, pool, -1)
	require.ErrorContains(t, err, "explain claim")
}
