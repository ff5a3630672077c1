package soak_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/testlog"
)

// process is one outboxd process (the test binary re-executed as outboxd)
// that the soak starts, kills with SIGKILL and starts again.
type process struct {
	name string
	args []string
	env  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	logs *testlog.Buffer
	runs int
}

// startProcess starts outboxd with args and env, and kills it when t ends.
func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, args: args, env: env, logs: &testlog.Buffer{}}
	p.start(t)
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("%s logs (last 8 KiB):\n%s", p.name, tail(p.logs, 8<<10))
		}
	})
	return p
}

func (p *process) start(t *testing.T) {
	t.Helper()
	raw, err := json.Marshal(p.args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), p.env...), envChildArgs+"="+string(raw))
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	require.NoError(t, cmd.Start(), "start %s", p.name)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.runs++
	p.mu.Unlock()
}

// kill sends SIGKILL and waits for the process to die; a process already
// dead is left alone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
		done <- nil // a later kill returns at once
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not die of SIGKILL", p.name)
	}
}

// restart kills the process with SIGKILL and starts it again.
func (p *process) restart(t *testing.T) {
	t.Helper()
	p.kill(t)
	p.start(t)
}

// freeze stops the process with SIGSTOP: it keeps its state and its
// sockets but runs no code until thaw.
func (p *process) freeze(t *testing.T) { p.signal(t, syscall.SIGSTOP) }

// thaw lets a frozen process run on (SIGCONT).
func (p *process) thaw(t *testing.T) { p.signal(t, syscall.SIGCONT) }

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	require.NoError(t, cmd.Process.Signal(sig), "%s: %s", p.name, sig)
}

// pid is the process id of the current run.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// exited reports whether the current run has ended, and how.
func (p *process) exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case err := <-done:
		done <- err
		return true, err
	default:
		return false, nil
	}
}

// tail is the last n bytes of l.
func tail(l *testlog.Buffer, n int) string {
	s := l.String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
