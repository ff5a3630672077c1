package nestjs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nestProject is the NestJS project the tests run: a consumer with an
// @EventPattern('user_created') handler and a ClientProxy client, in
// TypeScript, compiled with tsc into dist/.
const nestProject = "testdata/nest"

// nodeStartTimeout bounds a NestJS program's start-up.
const nodeStartTimeout = 30 * time.Second

var nestBuild struct {
	once sync.Once
	err  error
}

// buildNest makes sure Node.js and the project's packages are there and
// compiles the programs, once per test binary.
func buildNest(t testing.TB) {
	t.Helper()
	nestBuild.once.Do(func() { nestBuild.err = buildNestOnce() })
	if nestBuild.err != nil {
		t.Fatal(nestBuild.err)
	}
}

func buildNestOnce() error {
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return errors.New("the NestJS tests need Node.js 20 or later with npm: apt-get install nodejs npm")
		}
	}
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return fmt.Errorf("node --version: %w", err)
	}
	if major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".", 2)[0]); major < 20 {
		return fmt.Errorf("the NestJS tests need Node.js 20 or later (NestJS 12), found %s", strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(filepath.Join(nestProject, "node_modules")); errors.Is(err, fs.ErrNotExist) {
		// .ci/run installs them; a developer's first run does it here.
		if err := run("npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return fmt.Errorf("install the NestJS test project (npm ci --prefix internal/nestjs/%s): %w", nestProject, err)
		}
	}
	// Always compiled: tsc takes a second, and a stale dist/ would test old
	// sources.
	if err := run("npx", "--no", "--", "tsc", "-p", "tsconfig.json"); err != nil {
		return fmt.Errorf("compile the NestJS test project: %w", err)
	}
	return nil
}

// run runs a command in the project and returns its output in the error.
func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = nestProject
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nodeLine is one JSON line a NestJS program prints.
type nodeLine struct {
	Ready    bool            `json:"ready"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	UserID   json.RawMessage `json:"userId"`
	Response json.RawMessage `json:"response"`
	Error    json.RawMessage `json:"error"`
}

// nodeProc is a running NestJS program.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan nodeLine
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited
}

// startNode runs program (consumer or client) with env added and returns
// once it printed {"ready":true}. It is killed when t ends.
func startNode(t *testing.T, program string, env ...string) *nodeProc {
	t.Helper()
	buildNest(t)
	cmd := exec.Command("node", filepath.Join("dist", program+".js"))
	cmd.Dir = nestProject
	// Plain log lines, and no kafkajs migration notice.
	cmd.Env = append(os.Environ(), append([]string{"NO_COLOR=1", "KAFKAJS_NO_PARTITIONER_WARNING=1"}, env...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", program, err)
	}
	p := &nodeProc{name: program, cmd: cmd, stdin: stdin, lines: make(chan nodeLine, 1024), exited: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l nodeLine
			if text := sc.Text(); !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &l) != nil {
				t.Logf("%s: %s", program, text)
				continue
			}
			p.lines <- l
		}
	})
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s (stderr): %s", program, sc.Text())
		}
	})
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
	})
	p.next(t, nodeStartTimeout, "to be ready", func(l nodeLine) bool { return l.Ready })
	return p
}

// next returns the first line matching match within timeout; it fails t
// when none comes or the program exits first.
func (p *nodeProc) next(t *testing.T, timeout time.Duration, what string, match func(nodeLine) bool) nodeLine {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l := <-p.lines:
			if match(l) {
				return l
			}
		case <-p.exited:
			t.Fatalf("node %s exited (%v) while the test waited for it %s", p.name, p.err, what)
		case <-deadline.C:
			t.Fatalf("node %s: nothing within %s while the test waited for it %s", p.name, timeout, what)
		}
	}
}

// send writes one JSON line to the program's stdin.
func (p *nodeProc) send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("write to node %s: %v", p.name, err)
	}
}

// kill stops the program at once, as a crash would, and waits for it.
func (p *nodeProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
