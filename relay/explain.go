package relay

import (
	"context"
	"fmt"
	"strings"
)

// ExplainClaim runs EXPLAIN (ANALYZE, BUFFERS) on the relay's claim of up
// to limit rows, the very statement a polling leader runs (under the
// transaction horizon, no ids left out), and returns the plan as text with
// its execution time and buffer counts. The claim only reads: running it
// changes nothing, beside a relay or not. It is for benchmarks and for
// telling why a relay claims slowly.
func ExplainClaim(ctx context.Context, db DB, limit int) (string, error) {
	rows, err := db.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)"+claimSQL, limit, []int64{}, (*string)(nil))
	if err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", fmt.Errorf("explain claim: %w", err)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	return b.String(), nil
}
