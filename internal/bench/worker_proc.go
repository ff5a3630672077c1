package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// workerStopTimeout is how long a child worker has to stop after SIGTERM
// before it is killed.
const workerStopTimeout = 30 * time.Second

// rssInterval is how often the child worker's resident set is sampled.
const rssInterval = 100 * time.Millisecond

// workerMailFrom is the sender of the welcome mails, the child worker's
// MAIL_FROM and the raw mail loop's From.
const workerMailFrom = "outboxd bench <bench@example.com>"

// workerOpts are what a child worker runs: its handlers and their
// batching, and the mail server of the email handler.
type workerOpts struct {
	handlers    []string
	concurrency int
	batchSize   int
	batchWait   time.Duration
	// smtpAddr is the email handler's SMTP_ADDR; empty without it.
	smtpAddr string
}

// newWorkerOpts are the worker's defaults with handlers.
func newWorkerOpts(handlers ...string) workerOpts {
	return workerOpts{
		handlers:    handlers,
		concurrency: worker.ConcurrencyDefault,
		batchSize:   worker.BatchSizeDefault,
		batchWait:   worker.BatchWaitDefault,
	}
}

// oneAtATime are today's worker's settings with handlers: one message at a
// time per handler (WORKER_CONCURRENCY=1, hence the broker's InFlight 1)
// and one message a transaction.
func oneAtATime(handlers ...string) workerOpts {
	o := newWorkerOpts(handlers...)
	o.concurrency, o.batchSize = 1, 1
	return o
}

// describe names o's settings for the table's notes.
func (o workerOpts) describe() string {
	return fmt.Sprintf("WORKER_CONCURRENCY=%d WORKER_BATCH_SIZE=%d WORKER_BATCH_WAIT=%s", o.concurrency, o.batchSize, o.batchWait)
}

// childEnvPrefixes start the variables outboxd reads that the child
// worker must not inherit from the bench's environment: its settings are
// the bench's alone.
var childEnvPrefixes = []string{
	"DATABASE_URL=", "BROKER", "ADMIN_ADDR=", "LOG_", "WORKER_", "SMTP_", "MAIL_FROM=",
	"INBOX_RETENTION=", "NESTJS_", "KAFKA_BROKERS=", "OTEL_",
}

// env is the child worker's environment: base without outboxd's own
// variables, then o's settings against the run's database and NATS.
func (o workerOpts) env(base []string, dsn, natsURL string) []string {
	out := slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		return slices.ContainsFunc(childEnvPrefixes, func(p string) bool { return strings.HasPrefix(kv, p) })
	})
	out = append(out,
		"DATABASE_URL="+dsn,
		"BROKER=nats",
		"BROKER_URL="+natsURL,
		"ADMIN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=text",
		// Warnings and errors only: a line per mail sent would cost the
		// worker more than the mail.
		"LOG_LEVEL=warn",
		"WORKER_HANDLERS="+strings.Join(o.handlers, ","),
		"WORKER_CONCURRENCY="+strconv.Itoa(o.concurrency),
		"WORKER_BATCH_SIZE="+strconv.Itoa(o.batchSize),
		"WORKER_BATCH_WAIT="+o.batchWait.String(),
	)
	if o.smtpAddr != "" {
		out = append(out,
			"SMTP_ADDR="+o.smtpAddr,
			"MAIL_FROM="+workerMailFrom,
			"SMTP_TLS="+string(mail.TLSNone),
			"SMTP_CONCURRENCY="+strconv.Itoa(mail.ConcurrencyDefault),
		)
	}
	return out
}

// workerProc is an `outboxd worker` child process.
type workerProc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr *tailWriter
	// done is closed once the process has exited and waitErr is set.
	done    chan struct{}
	waitErr error
}

// startWorker runs `outboxd worker` with o as a child process: the binary
// the bench runs in (os.Executable), so that its memory is the worker's
// alone. Its logs (warnings and errors) are kept for the errors of the run.
func (e *env) startWorker(ctx context.Context, o workerOpts) (*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the outboxd binary to run the worker: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, exe, "worker")
	cmd.Env = o.env(os.Environ(), e.dsn, e.natsURL)
	// Stopping is SIGTERM, as in production, and a kill after
	// workerStopTimeout.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = workerStopTimeout
	p := &workerProc{cmd: cmd, cancel: cancel, stderr: &tailWriter{max: 4096}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s worker: %w", exe, err)
	}
	go func() {
		defer close(p.done)
		p.waitErr = cmd.Wait()
	}()
	return p, nil
}

// pid is the child's process id.
func (p *workerProc) pid() int { return p.cmd.Process.Pid }

// exited returns an error saying how the child ended if it has, and nil
// while it runs.
func (p *workerProc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("the worker exited (%v) before the run ended: %s", p.waitErr, p.stderr.String())
	default:
		return nil
	}
}

// stop sends the child SIGTERM, waits for it to exit (killing it after
// workerStopTimeout) and fails unless it exited cleanly.
func (p *workerProc) stop() error {
	p.cancel()
	<-p.done
	if p.cmd.ProcessState != nil && p.cmd.ProcessState.Success() {
		return nil
	}
	return fmt.Errorf("the worker did not stop cleanly (%v): %s", p.waitErr, p.stderr.String())
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = slices.Delete(w.buf, 0, over)
	}
	return len(b), nil
}

// String is what was kept, on one line, or "no output".
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(strings.Fields(string(w.buf)), " ")
	if s == "" {
		return "no output"
	}
	return s
}

// sampleRSS samples pid's resident set size in MB (2^20 bytes) every
// rssInterval until stop, which returns the samples; a process that has
// ended, or a system without /proc, yields none.
func sampleRSS(pid int) (stop func() []float64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	done := make(chan struct{})
	var (
		samples []float64
		ended   = make(chan struct{})
	)
	go func() {
		defer close(ended)
		t := time.NewTicker(rssInterval)
		defer t.Stop()
		for {
			if kb, err := readVmRSS(path); err == nil {
				samples = append(samples, float64(kb)/1024)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() []float64 {
		close(done)
		<-ended
		return samples
	}
}

// readVmRSS reads the VmRSS line of a /proc/<pid>/status file, in kB.
func readVmRSS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(bufio.NewScanner(f))
}

// errNoVmRSS is parseVmRSS's error for a status without VmRSS (a zombie).
var errNoVmRSS = errors.New("no VmRSS line")

// parseVmRSS finds "VmRSS:   1234 kB" among the lines of s and returns
// the kB.
func parseVmRSS(s *bufio.Scanner) (int64, error) {
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", s.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errNoVmRSS
}

// peakAndMedian are the highest and the median of samples, 0 without any.
func peakAndMedian(samples []float64) (peak, median float64) {
	if len(samples) == 0 {
		return 0, 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[len(s)-1], s[len(s)/2]
}
