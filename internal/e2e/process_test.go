package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/cli"
	"github.com/outboxd/outboxd/internal/testlog"
)

// envOutboxdArgs makes TestOutboxdProcess run outboxd with these
// JSON-encoded arguments: tests start outboxd as a real process, with its own
// environment (goose's ENVSUB, SSL_CERT_FILE and the secrets are read from
// it), and read everything it writes.
const envOutboxdArgs = "OUTBOXD_E2E_OUTBOXD_ARGS"

// TestOutboxdProcess is not a test: in a child started by startOutboxd it
// runs outboxd and exits with its code. It does nothing otherwise.
func TestOutboxdProcess(t *testing.T) {
	t.Parallel()
	raw := os.Getenv(envOutboxdArgs)
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// outboxdProcess is a running outboxd child with its output captured.
type outboxdProcess struct {
	args   []string
	cmd    *exec.Cmd
	output *testlog.Buffer // stdout and stderr, interleaved
	done   chan struct{}
	err    error // of Wait, once done is closed
}

// startOutboxd runs `outboxd args...` as a child process with env added to
// the test's environment. It is killed, if still running, when t ends.
func startOutboxd(t *testing.T, env map[string]string, args ...string) *outboxdProcess {
	t.Helper()
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxdProcess$")
	cmd.Env = append(childEnviron(env), envOutboxdArgs+"="+string(raw))
	p := &outboxdProcess{args: args, cmd: cmd, output: &testlog.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// runOutboxd runs `outboxd args...` to completion and returns its exit code
// and output.
func runOutboxd(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	p := startOutboxd(t, env, args...)
	return p.wait(t, 60*time.Second), p.output.String()
}

// stop sends sig and waits for the process to exit; it returns the exit
// code (-1 for a signal that killed it).
func (p *outboxdProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	return p.wait(t, 20*time.Second)
}

func (p *outboxdProcess) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("outboxd %s did not exit within %s; output:\n%s", strings.Join(p.args, " "), timeout, p.output.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitForOutput waits until the output contains s.
func (p *outboxdProcess) waitForOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.output.String(), s) }, timeout, 20*time.Millisecond,
		"outboxd never wrote %q; output:\n%s", s, p.output.String())
}

// childEnviron is the test's environment without outboxd's own variables,
// so that a developer's shell cannot change what a child does, plus env.
func childEnviron(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL", name == "BROKER", name == "BROKER_URL", name == "HTTP_ADDR", name == "ADMIN_ADDR",
			strings.HasPrefix(name, "SMTP_"), strings.HasPrefix(name, "OUTBOXD_") && name != "OUTBOXD_TEST_DATABASE_URL":
			continue
		}
		if _, ok := env[name]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// runInBackground runs each fn with ctx in its own goroutine. Once ctx is
// cancelled, stop waits for all of them and returns their errors joined.
func runInBackground(ctx context.Context, fns ...func(context.Context) error) (stop func() error) {
	done := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { done <- fn(ctx) }()
	}
	return func() error {
		errs := make([]error, len(fns))
		for i := range fns {
			errs[i] = <-done
		}
		return errors.Join(errs...)
	}
}
