package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

// TestRelayFlagsShowTheRelayDefaults: the relay's flags default to the relay
// package's constants, and the help says so.
func TestRelayFlagsShowTheRelayDefaults(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"relay", "dev"} {
		code, out, errOut := run(context.Background(), cmd, "--help")
		require.Equal(t, 0, code, errOut)
		for _, want := range []string{
			"--batch-size=" + strconv.Itoa(relay.BatchSizeDefault),
			"--poll-interval=" + relay.PollIntervalDefault.String(),
			"--max-attempts=" + strconv.Itoa(relay.MaxAttemptsDefault),
			`--capture="auto"`,
			`--publication="` + relay.PublicationDefault + `"`,
			"$RELAY_SLOT",
		} {
			require.Contains(t, out, want, "outboxd %s --help", cmd)
		}
	}
}

// TestRelayAskedForWALWithoutReplicationFailsInOneLine: a relay told to
// stream the WAL with a role that may not replicate exits 1 with the one
// line that says what to change. The role is a login role in the relay's
// privilege bundle, as the README sets one up.
func TestRelayAskedForWALWithoutReplicationFailsInOneLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	role := "outboxd_test_relay_" + hex.EncodeToString(suffix)
	_, err := pool.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN NOREPLICATION IN ROLE outboxd_relay", pgx.Identifier{role}.Sanitize()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP ROLE "+pgx.Identifier{role}.Sanitize())
		require.NoError(t, err)
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(role)

	// Logs below warn (the admin endpoints listening) are not the failure.
	code, _, errOut := run(ctx, "relay", "--database-url", u.String(), "--capture", "wal", "--log-level", "warn",
		"--broker", "postgres", "--broker-url", dsn, "--admin-addr", freeAddr(t))
	require.Equal(t, 1, code, errOut)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	require.Contains(t, errOut, "outboxd relay: relay: WAL capture unavailable: the database role has no REPLICATION attribute")
	require.Contains(t, errOut, "or capture by polling")
}
