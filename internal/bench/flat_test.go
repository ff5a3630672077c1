package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseExplainReadsTheTopNode(t *testing.T) {
	t.Parallel()
	c, err := parseExplain(`Limit  (cost=20.01..166.21 rows=500 width=374) (actual time=0.993..1.241 rows=500 loops=1)
  Buffers: shared hit=482 read=7 dirtied=60
  ->  Index Scan using outbox_pkey on outbox o  (actual time=0.987..1.138 rows=500 loops=1)
        Buffers: shared hit=481 read=7
Planning:
  Buffers: shared hit=4
Planning Time: 0.339 ms
Execution Time: 1.304 ms
`)
	require.NoError(t, err)
	require.Equal(t, claimCost{execMS: 1.304, hit: 482, read: 7}, c)

	c, err = parseExplain("Limit\n  Buffers: shared read=3\nExecution Time: 0.5 ms\n")
	require.NoError(t, err)
	require.Equal(t, claimCost{execMS: 0.5, read: 3}, c)

	_, err = parseExplain("Limit\nExecution Time: 0.5 ms\n")
	require.ErrorContains(t, err, "no shared buffers")
	_, err = parseExplain("Limit\n  Buffers: shared hit=1\n")
	require.ErrorContains(t, err, "no execution time")
}
