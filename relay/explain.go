package relay

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ExplainClaim runs EXPLAIN (ANALYZE, BUFFERS) on the relay's claim of up
// to limit rows, the very statement a polling leader runs (under the
// transaction horizon, no ids left out, from the smallest pending id as the
// claim floor, where a leader's floor trails by about two of its floor
// reads), and returns the plan as text with its execution time and buffer
// counts. Reading the floor is not part of the plan. The claim only reads:
// running it changes nothing, beside a relay or not. It is for benchmarks
// and for telling why a relay claims slowly.
func ExplainClaim(ctx context.Context, db DB, limit int) (string, error) {
	floorRows, err := db.Query(ctx, `SELECT coalesce(min(id), 0) FROM outbox WHERE published_at IS NULL`)
	if err != nil {
		return "", fmt.Errorf("explain claim: read the floor: %w", err)
	}
	floor, err := pgx.CollectExactlyOneRow(floorRows, pgx.RowTo[int64])
	if err != nil {
		return "", fmt.Errorf("explain claim: read the floor: %w", err)
	}
	rows, err := db.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)"+claimSQL, limit, []int64{}, (*string)(nil), floor)
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
