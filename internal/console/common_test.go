package console_test

import (
	"cmp"
	"os"
	"testing"
	"time"
)

// consoleRole is the role migration 00013 created on the test server, named
// as it named it.
var consoleRole = cmp.Or(os.Getenv("OUTBOXD_CONSOLE_ROLE"), "outboxd_console")

// waitFor polls cond until it holds, and fails with describe's account of
// the last state when it does not within timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
