package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/console"
)

// seedDeadLetters adds n dead letters to each table, one millisecond apart.
func seedDeadLetters(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
INSERT INTO dead_letters (handler, message_id, topic, payload, metadata, error, attempts, failed_at)
SELECT (ARRAY['email', 'profile', 'audit'])[1 + i % 3], gen_random_uuid(), 'user.created',
       convert_to('{"n":' || i || '}', 'UTF8'), '{}', 'handler failed', 6, now() - i * interval '1 ms'
FROM generate_series(1, $1) i`, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts, next_attempt_at, last_error, failed_at)
SELECT i, gen_random_uuid(), 'user.created', 'k' || i % 100, convert_to('{"n":' || i || '}', 'UTF8'), '{}',
       now(), pg_current_xact_id(), 5, now(), 'rejected', now() - i * interval '1 ms' - interval '500 us'
FROM generate_series(1, $1) i`, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE dead_letters; ANALYZE outbox_dead_letters`)
	require.NoError(t, err)
}

// positionAt is the list's cursor after its first n rows, computed apart
// from the console: the merged order is failure time, then source, then id,
// all descending.
func positionAt(t *testing.T, pool *pgxpool.Pool, n int) string {
	t.Helper()
	var at time.Time
	var source string
	var id int64
	require.NoError(t, pool.QueryRow(context.Background(), `
SELECT failed_at, source, id FROM (
	SELECT failed_at, 'handler' AS source, id FROM dead_letters
	UNION ALL SELECT failed_at, 'relay', id FROM outbox_dead_letters) d
ORDER BY failed_at DESC, source DESC, id DESC OFFSET $1 - 1 LIMIT 1`, n).Scan(&at, &source, &id))
	return at.UTC().Format(time.RFC3339Nano) + "," + source + "," + strconv.FormatInt(id, 10)
}

var rowRef = regexp.MustCompile(`<tr data-ref="([a-z]+:[0-9]+)">`)

// timePage fetches a page of the list five times and returns the median.
func timePage(t *testing.T, c *client, query string) (time.Duration, []string) {
	t.Helper()
	var times []time.Duration
	var refs []string
	for range 5 {
		start := time.Now()
		resp, body := c.get("deadletters?" + query)
		times = append(times, time.Since(start))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		refs = refs[:0]
		for _, m := range rowRef.FindAllStringSubmatch(body, -1) {
			refs = append(refs, m[1])
		}
	}
	slices.Sort(times)
	return times[2], refs
}

// TestDeadLetterListPagesByKeyset: the list of 100,000 dead letters (half
// of each source) pages as fast at its end as a list of 100 does at its
// start, and each page continues exactly where the last one stopped.
func TestDeadLetterListPagesByKeyset(t *testing.T) {
	t.Parallel()
	small := startConsole(t, console.Config{})
	big := startConsole(t, console.Config{})
	seedDeadLetters(t, small.owner, 50)
	seedDeadLetters(t, big.owner, 50_000)

	smallTime, smallRefs := timePage(t, small.client(t), "")
	require.Len(t, smallRefs, console.PageSizeDefault)

	deep := positionAt(t, big.owner, 99_900)
	deepTime, deepRefs := timePage(t, big.client(t), url.Values{"before": {deep}}.Encode())
	require.Len(t, deepRefs, console.PageSizeDefault)
	next := positionAt(t, big.owner, 99_901)
	parts := strings.Split(next, ",")
	require.Equal(t, parts[1]+":"+parts[2], deepRefs[0], "the page starts right after the cursor")

	t.Logf("first page of 100: %s; page at 99,900 of 100,000: %s", smallTime, deepTime)
	require.Less(t, deepTime, 5*smallTime+50*time.Millisecond, "keyset paging costs the same at any depth")

	// Filtered, by handler: the other source drops out, the order holds.
	_, refs := timePage(t, big.client(t), "handler=audit&"+url.Values{"before": {positionAt(t, big.owner, 50_000)}}.Encode())
	require.Len(t, refs, console.PageSizeDefault)
	for _, r := range refs {
		require.True(t, strings.HasPrefix(r, "handler:"), r)
	}
}
