package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/relay"
)

// captures are the two sources of the relay: a test of the pipeline runs
// once with each.
var captures = []relay.Capture{relay.CapturePoll, relay.CaptureWAL}

// forEachCapture runs body once per capture mode, as parallel subtests.
func forEachCapture(t *testing.T, body func(t *testing.T, capture relay.Capture)) {
	t.Helper()
	for _, c := range captures {
		t.Run(string(c), func(t *testing.T) {
			t.Parallel()
			body(t, c)
		})
	}
}

// waitStreaming waits until the relay of pool streams its slot, past the
// rows the table held: tests that hold transactions open start them only
// then, since creating a slot waits for every transaction of the cluster
// that is in progress (and a slot being created already shows as active).
func waitStreaming(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	slot := relay.SlotName(pool.Config().ConnConfig.Database)
	require.Eventually(t, func() bool {
		var streaming bool
		err := pool.QueryRow(context.Background(), `
SELECT s.active AND r.drained_at IS NOT NULL
FROM pg_replication_slots s JOIN relay_slot r USING (slot_name)
WHERE s.slot_name = $1`, slot).Scan(&streaming)
		return err == nil && streaming
	}, 30*time.Second, 10*time.Millisecond, "relay streams slot %s", slot)
}
