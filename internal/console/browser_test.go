package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/console"
	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// rejectedTopic is a topic the test's broker refuses for good: its messages
// become the relay's dead letters.
const rejectedTopic = "rejected.by.broker"

var errRejected = errors.New("rejected for good by the test broker")

type rejectingPublisher struct{ message.Publisher }

func (p rejectingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == rejectedTopic {
		return errRejected
	}
	return p.Publisher.Publish(topic, msgs...)
}

// pipeline is a real relay and worker on the console's database, over an
// in-process broker, each exporting its /metrics as in production.
type pipeline struct {
	relayMetrics, workerMetrics string
	start                       func()
}

func newPipeline(t *testing.T, dsn string) *pipeline {
	t.Helper()
	pool := pgtest.Connect(t, dsn)
	logger := slog.New(slog.DiscardHandler)
	relayReg, workerReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	relayMetrics := httptest.NewServer(promhttp.HandlerFor(relayReg, promhttp.HandlerOpts{}))
	t.Cleanup(relayMetrics.Close)
	workerMetrics := httptest.NewServer(promhttp.HandlerFor(workerReg, promhttp.HandlerOpts{}))
	t.Cleanup(workerMetrics.Close)

	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	r, err := relay.New(pool, rejectingPublisher{pubsub}, relay.Config{
		Capture: relay.CapturePoll, MaxAttempts: 1, PollInterval: 200 * time.Millisecond,
		IsPermanent:     func(err error) bool { return errors.Is(err, errRejected) },
		MetricsInterval: 200 * time.Millisecond, Registerer: relayReg, Logger: logger,
	})
	require.NoError(t, err)
	w, err := worker.New(pool, func(context.Context, string) (message.Subscriber, error) { return pubsub, nil },
		mail.LogMailer{Logger: logger}, worker.Config{MaxRetries: -1, Registerer: workerReg, Logger: logger})
	require.NoError(t, err)
	p := &pipeline{relayMetrics: relayMetrics.URL + "/metrics", workerMetrics: workerMetrics.URL + "/metrics"}
	p.start = func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 2)
		go func() { done <- r.Run(ctx) }()
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			require.NoError(t, errors.Join(<-done, <-done))
			require.NoError(t, pubsub.Close())
		})
	}
	return p
}

// TestConsoleInABrowser drives the console in headless Chromium, on a real
// database with a real relay and worker, as an operator would during an
// incident: the overview's backlog moves as messages are enqueued and
// published; a poison message becomes a dead letter, is found by its
// message id, is replayed by a click once its cause is fixed, and reaches
// its handler; a bulk purge asks first, with a count, and removes exactly
// the filtered rows; a selection asks too; a <script> payload shows as text
// and does not run; every control is labelled and the list works from the
// keyboard; a POST without the CSRF token is refused; and no page
// logs a JavaScript error or warning.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const password = "browser-pw-51c2"
	dsn := pgtest.NewDatabase(t)
	pipe := newPipeline(t, dsn)
	tc := startConsoleOn(t, dsn, console.Config{
		Password: password, PathPrefix: "/ops",
		RelayMetrics: pipe.relayMetrics, WorkerMetrics: pipe.workerMetrics,
		RefreshInterval: 250 * time.Millisecond, SampleInterval: 250 * time.Millisecond,
	})
	b := newBrowser(t, basicAuth(console.UserDefault, password))
	csrfRefusal := "" // the URL of the one request expected to fail

	userID, poisonID := uuid.New(), uuid.New()
	t.Run("OverviewBacklogMovesWithoutReload", func(t *testing.T) {
		b.in(t)
		b.do(chromedp.Navigate(tc.url), chromedp.WaitVisible(chromedp.CSS("#tile-pending")))
		require.Equal(t, "0", b.text(`[data-tile="pending"]`))
		eval[chromedp.Void](b, `window.sameDocument = true`)

		// A user.created for a user that does not exist: the profile
		// handler's foreign key refuses it. And two the broker refuses.
		payload, err := json.Marshal(event.UserCreated{UserID: userID, Email: "poison@example.com", Name: "Poison", CreatedAt: time.Now()})
		require.NoError(t, err)
		tx, err := tc.owner.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, outbox.EnqueueTx(ctx, tx,
			outbox.Message{ID: poisonID, Topic: event.TopicUserCreated, Key: userID.String(), Payload: payload},
			outbox.Message{Topic: rejectedTopic, Key: "r1", Payload: []byte(`{"n":1}`)},
			outbox.Message{Topic: rejectedTopic, Key: "r2", Payload: []byte(`{"n":2}`)},
		))
		require.NoError(t, tx.Commit(ctx))

		b.waitFor("the backlog tile to count 3", `document.querySelector('[data-tile="pending"]').textContent === "3"`, 15*time.Second)
		require.Contains(t, b.text("#backlog tbody"), event.TopicUserCreated)
		require.True(t, eval[bool](b, `window.sameDocument === true`), "refreshed without a reload")
		b.screenshot("overview-backlog")

		pipe.start()
		b.waitFor("the backlog to drain and 3 dead letters", `document.querySelector('[data-tile="pending"]').textContent === "0" &&
			document.querySelector('[data-tile="dead_letters"]').textContent === "3"`, 30*time.Second)
		b.waitFor("a chart line of published messages", `document.querySelectorAll("#charts figure path.line").length >= 3`, 15*time.Second)
		b.waitFor("no note under the charts: they have their metrics and the sampled relay leads",
			`document.querySelector('[data-field="notes"]').children.length === 0`, 10*time.Second)
		require.Contains(t, b.text("#charts"), "published by the relay")
		require.NotContains(t, b.text(`[data-tile="relay"]`), "none")
		require.Contains(t, b.text(`[data-tile="capture"]`), "poll")
		require.Contains(t, b.text("#dead-letters tbody"), "profile")
		require.True(t, eval[bool](b, `window.sameDocument === true`))
		b.screenshot("overview")
	})

	t.Run("PoisonMessageIsFoundReplayedAndHandled", func(t *testing.T) {
		b.in(t)
		b.do(chromedp.SendKeys(chromedp.CSS("#nav-message-id"), poisonID.String()),
			chromedp.Click(chromedp.CSS("header form.lookup button")),
			chromedp.WaitVisible(chromedp.CSS("#dead-lettered")))
		require.Contains(t, b.text("#dead-lettered"), "by handler profile")
		b.waitFor("email and audit to have handled it", `/email/.test(document.querySelector("#handled").textContent) &&
			/audit/.test(document.querySelector("#handled").textContent)`, 5*time.Second)
		b.screenshot("message-lookup")

		b.do(chromedp.Click(chromedp.CSS("#dead-lettered a")), chromedp.WaitVisible(chromedp.CSS("#replay-one")))
		require.Contains(t, b.text("#letter-error"), "profile")
		require.Contains(t, b.text("#payload"), `"email": "poison@example.com"`, "pretty-printed JSON")
		b.screenshot("dead-letter")

		// The operator fixes the cause, then replays by clicking.
		_, err := tc.owner.Exec(ctx, `INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'poison@example.com', 'Poison', 'x')`, userID)
		require.NoError(t, err)
		b.do(chromedp.Click(chromedp.CSS("#replay-one")), chromedp.WaitVisible(chromedp.CSS("#whereabouts")))
		require.Contains(t, b.text(".notice"), "Replayed 1")
		for !strings.Contains(b.text("#whereabouts"), "handled by profile") {
			b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#whereabouts")))
			require.NotContains(t, b.text("#whereabouts"), "Dead-lettered", "the replay succeeded")
		}
		var profiles int
		require.NoError(t, tc.owner.QueryRow(ctx, `SELECT count(*) FROM profiles WHERE user_id = $1`, userID).Scan(&profiles))
		require.Equal(t, 1, profiles, "the profile handler did its work")
	})

	t.Run("ScriptPayloadShowsAsText", func(t *testing.T) {
		b.in(t)
		const script = `<script>alert("payload")</script><img src=x onerror=alert("img")>`
		id, err := deadletter.Add(ctx, tc.owner, deadletter.DeadLetter{
			Handler: "audit", MessageID: uuid.New(), Topic: `<b>topic</b>`,
			Payload:  []byte(`{"html":` + strconv.Quote(script) + `}`),
			Metadata: map[string]string{"note": `<svg onload=alert("metadata")>`},
			Error:    `<script>console.error("error column ran")</script>`, Attempts: 1})
		require.NoError(t, err)
		b.do(chromedp.Navigate(tc.url+"deadletters?source=handler&handler=audit"), chromedp.WaitVisible(chromedp.CSS("#letters")))
		require.Contains(t, b.text("#letters"), "<b>topic</b>")
		b.do(chromedp.Navigate(tc.url+"deadletters/handler:"+strconv.FormatInt(id, 10)), chromedp.WaitVisible(chromedp.CSS("#payload")))
		require.Contains(t, b.text("#payload"), `<script>alert(\"payload\")</script>`)
		require.Contains(t, b.text("#letter-error"), `<script>console.error("error column ran")</script>`)
		require.Contains(t, b.text("#metadata"), `<svg onload=alert("metadata")>`)
		require.Zero(t, eval[int](b, `document.querySelectorAll("main script, main img, main svg[onload], #payload *, #letter-error *").length`),
			"no element came out of the data")
		b.screenshot("dead-letter-script")
	})

	t.Run("BulkPurgeAsksAndRemovesExactlyTheFiltered", func(t *testing.T) {
		b.in(t)
		for i := range 6 {
			topic := "bulk.a"
			if i >= 4 {
				topic = "bulk.b"
			}
			_, err := deadletter.Add(ctx, tc.owner, deadletter.DeadLetter{Handler: "email", MessageID: uuid.New(), Topic: topic, Error: "smtp: 550", Attempts: 3})
			require.NoError(t, err)
		}
		before := countDeadLetters(t, tc)
		b.do(chromedp.Navigate(tc.url+"deadletters"), chromedp.WaitVisible(chromedp.CSS("#f-topic")),
			chromedp.SendKeys(chromedp.CSS("#f-topic"), "bulk.a"),
			chromedp.Click(chromedp.CSS("#apply-filter")),
			chromedp.WaitVisible(chromedp.CSS(`#f-topic[value="bulk.a"]`)))
		require.Equal(t, 4, eval[int](b, `document.querySelectorAll("#letters tbody tr[data-ref]").length`))
		b.screenshot("dead-letters")

		b.do(chromedp.Click(chromedp.CSS("#purge-matching")), chromedp.WaitVisible(chromedp.CSS("#confirm-count")))
		require.Contains(t, b.text("#confirm-count"), "4 dead letter(s): dead letters with topic bulk.a")
		require.Equal(t, before, countDeadLetters(t, tc), "asking changed nothing")
		b.screenshot("confirm-purge")
		b.do(chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
		require.Contains(t, b.text(".notice"), "Purged 4")
		after := countDeadLetters(t, tc)
		require.Zero(t, after["bulk.a"])
		delete(before, "bulk.a")
		require.Equal(t, before, after, "only the filtered rows went")
	})

	t.Run("SelectionAsksFirst", func(t *testing.T) {
		b.in(t)
		b.do(chromedp.Navigate(tc.url+"deadletters?source=relay"), chromedp.WaitVisible(chromedp.CSS("#letters")))
		require.Equal(t, 2, eval[int](b, `document.querySelectorAll("#letters tbody tr[data-ref]").length`))
		b.do(chromedp.Click(chromedp.CSS(`#letters tbody tr:nth-child(1) input[name="sel"]`)),
			chromedp.Click(chromedp.CSS(`#letters tbody tr:nth-child(2) input[name="sel"]`)),
			chromedp.Click(chromedp.CSS("#purge-selected")), chromedp.WaitVisible(chromedp.CSS("#confirm-count")))
		require.Contains(t, b.text("#confirm-count"), "2 dead letter(s): the selected dead letters")
		require.Equal(t, 2, countDeadLetters(t, tc)[rejectedTopic])
		b.do(chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
		require.Contains(t, b.text(".notice"), "Purged 2")
		require.Zero(t, countDeadLetters(t, tc)[rejectedTopic])
	})

	t.Run("KeyboardAndLabels", func(t *testing.T) {
		b.in(t)
		for _, page := range []string{"", "deadletters", "messages?id=" + poisonID.String()} {
			b.do(chromedp.Navigate(tc.url+page), chromedp.WaitVisible(chromedp.CSS("main h1")))
			require.Zero(t, eval[int](b, `[...document.querySelectorAll("input:not([type=hidden]), select, button")]
				.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label") && !e.textContent.trim()).length`),
				"every control of %q has a label", page)
		}
		// The first Tab reaches the skip link, and Enter in a filter field
		// applies the filter: no mouse needed.
		b.do(chromedp.Navigate(tc.url+"deadletters"), chromedp.WaitVisible(chromedp.CSS("#f-topic")),
			chromedp.KeyEvent("\t"))
		require.Equal(t, "Skip to content", eval[string](b, `document.activeElement.textContent`))
		b.do(chromedp.Focus(chromedp.CSS("#f-topic")), chromedp.KeyEvent("bulk.b\r"),
			chromedp.WaitVisible(chromedp.CSS(`#f-topic[value="bulk.b"]`)))
		require.Equal(t, 2, eval[int](b, `document.querySelectorAll("#letters tbody tr[data-ref]").length`))
	})

	t.Run("PostWithoutTheCSRFTokenIsRefused", func(t *testing.T) {
		b.in(t)
		b.do(chromedp.Navigate(tc.url+"deadletters"), chromedp.WaitVisible(chromedp.CSS("#letters")))
		ref := eval[string](b, `document.querySelector("#letters tbody tr[data-ref]").dataset.ref`)
		csrfRefusal = tc.url + "deadletters/purge"
		status := eval[int](b, `fetch(`+jsString(csrfRefusal)+`, {method: "POST", body: new URLSearchParams({sel: `+jsString(ref)+`})}).then(r => r.status)`)
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, ref, eval[string](b, `document.querySelector("#letters tbody tr[data-ref]").dataset.ref`))
		b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#letters tr[data-ref="`+ref+`"]`)))
	})

	b.in(t)
	require.Empty(t, b.problems(func(m chromedp.ConsoleMessage) bool {
		// The refused POST above, which the browser logs as a failed load.
		return csrfRefusal != "" && m.URL == csrfRefusal && strings.Contains(m.Text, "403")
	}), "the pages logged no JavaScript error or warning and opened no dialog")
}

// countDeadLetters counts the dead letters of both tables by topic.
func countDeadLetters(t *testing.T, tc *testConsole) map[string]int {
	t.Helper()
	rows, err := tc.owner.Query(context.Background(), `
SELECT topic, count(*) FROM (SELECT topic FROM dead_letters UNION ALL SELECT topic FROM outbox_dead_letters) d GROUP BY topic`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var topic string
		var n int
		require.NoError(t, rows.Scan(&topic, &n))
		out[topic] = n
	}
	require.NoError(t, rows.Err())
	return out
}
