package cli_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// TestAPIOutboxNotify: with OUTBOX_NOTIFY=on a signup wakes the relays (a
// coalesced notification just after its commit); with off it does not,
// which a notification sent after the signup's commit shows by arriving
// first.
func TestAPIOutboxNotify(t *testing.T) {
	t.Parallel()
	for notify, want := range map[string]string{"on": "", "off": "after the signup"} {
		t.Run(notify, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dsn := pgtest.NewDatabase(t)
			listener, err := pgx.Connect(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(func() { _ = listener.Close(context.Background()) })
			_, err = listener.Exec(ctx, "LISTEN "+outbox.NotifyChannel)
			require.NoError(t, err)

			addr := freeAddr(t)
			start(t, "api", "--database-url", dsn, "--http-addr", addr, "--outbox-notify", notify,
				"--argon2-memory-kib", "64", "--argon2-iterations", "1")
			var resp *http.Response
			require.Eventually(t, func() bool {
				resp, err = http.Post("http://"+addr+"/v1/signup", "application/json",
					strings.NewReader(`{"email":"ann@example.com","name":"Ann","password":"correct horse"}`))
				return err == nil
			}, 10*time.Second, 20*time.Millisecond)
			resp.Body.Close()
			require.Equal(t, http.StatusCreated, resp.StatusCode)

			pool := pgtest.Connect(t, dsn)
			_, err = pool.Exec(ctx, "SELECT pg_notify($1, 'after the signup')", outbox.NotifyChannel)
			require.NoError(t, err)
			n, err := listener.WaitForNotification(ctx)
			require.NoError(t, err)
			if notify == "on" && n.Payload != want {
				// Sent after the commit, the wake-up may come second.
				n, err = listener.WaitForNotification(ctx)
				require.NoError(t, err)
			}
			require.Equal(t, want, n.Payload)
		})
	}
}
