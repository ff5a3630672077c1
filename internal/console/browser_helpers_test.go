package console_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// envScreenshots names a folder for the browser tests' screenshots; without
// it they go to the test's temporary folder.
const envScreenshots = "OUTBOXD_CONSOLE_SCREENSHOTS"

// browser is one headless Chromium tab, with what its pages logged.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string // screenshots
	mu   sync.Mutex
	logs []chromedp.ConsoleMessage // errors, warnings and exceptions
	// dialogs are the alert, confirm and prompt dialogs the pages opened.
	dialogs []string
}

// newBrowser starts Chromium for t, sending headers with every request,
// and stops it when t ends.
func newBrowser(t *testing.T, headers map[string]string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s: apt-get install -y chromium", chromiumPath)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, dir: os.Getenv(envScreenshots)}
	if b.dir == "" {
		b.dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(b.dir, 0o755))
	require.NoError(t, chromedp.Do(ctx), "start Chromium") // binds the browser to ctx, not to a step's timeout

	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				b.mu.Lock()
				b.logs = append(b.logs, m)
				b.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	hdrs := network.Headers{}
	for k, v := range headers {
		hdrs[k] = v
	}
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: hdrs})
	require.NoError(t, err)
	return b
}

// in makes t the test that the helpers fail: a subtest's.
func (b *browser) in(t *testing.T) { b.t = t }

// step bounds one group of actions, so that a page that never shows what
// the test waits for fails the test instead of hanging it.
func (b *browser) step(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, timeout)
}

// do runs actions within 30 s.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step(30 * time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

// text returns the text of the first element sel matches, once visible.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.step(30 * time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	require.NoError(b.t, err, sel)
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.step(30 * time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, expr)
	return v
}

// waitFor polls a JavaScript condition in the page until it holds, within
// timeout; what says what is awaited.
func (b *browser) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := b.step(timeout + 5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	require.NoError(b.t, err, "waiting for %s (%s); the page logged: %v", what, cond, b.problems(nil))
}

// screenshot saves the page as name.png.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := b.step(30 * time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	path := filepath.Join(b.dir, name+".png")
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot %s (%d KiB)", path, len(png)>>10)
	return path
}

// problems returns what the pages logged as errors or warnings, and the
// dialogs they opened, but for the log entries expected allows.
func (b *browser) problems(expected func(chromedp.ConsoleMessage) bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.logs {
		if expected == nil || !expected(m) {
			out = append(out, m.String()+" at "+m.URL)
		}
	}
	for _, d := range b.dialogs {
		out = append(out, "dialog "+d)
	}
	return out
}

func basicAuth(user, password string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "<", `\x3c`)
	return `"` + r.Replace(s) + `"`
}
