package soak_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
)

// The long soak's settings, read from the environment.
const (
	// envLongDuration turns TestSoakLong on: how long the load runs, in
	// whole minutes (at least 2m), for example 30m.
	envLongDuration = "OUTBOXD_SOAK_DURATION"
	// envLongCapture is the relays' capture mode, wal (the default) or poll.
	envLongCapture = "OUTBOXD_SOAK_CAPTURE"
	// envLongOut is where the samples, the chart, the table and the
	// processes' logs go; a new directory under $TMPDIR by default.
	envLongOut = "OUTBOXD_SOAK_OUT"
)

// The long soak's shape and limits.
const (
	longRate = 200 // signups per second, the whole run
	// longMaxInFlight bounds the signups outstanding at once: two seconds
	// of load. A signup answers in milliseconds, so reaching the bound
	// means the API has stalled, and the signups it skips are counted.
	longMaxInFlight = 2 * longRate
	// longSkippedLimit is the share of signups the run may skip for the
	// in-flight bound and still count as a run at longRate.
	longSkippedLimit = 0.01
	// longWarmupMinutes is the first minute the limits look at: until
	// then the processes' heaps, PostgreSQL's caches and autovacuum's
	// rhythm are still settling. Runs shorter than twice that use half
	// their length.
	longWarmupMinutes = 5
	// rssGrowthLimit fails the run when any outboxd process's RSS at the
	// end exceeds its RSS at the warm-up minute by more than this share.
	// A Go process at a steady load holds a steady heap; GC and the
	// scavenger move RSS by tens of percent, so a leak is what it takes to
	// pass 50 %: at 12,000 messages a minute even 100 bytes a message
	// leaked is 36 MB in half an hour.
	rssGrowthLimit = 0.50
	// outboxBacklogLimit is the outbox row count that, seen in two
	// samples in a row after the warm-up, fails the run: ten seconds of
	// load. A relay keeping up holds a few batches at any instant; one
	// that falls behind stays above the limit and climbs.
	outboxBacklogLimit = 10 * longRate
	// longDrainTimeout bounds the wait, after the load, for the outbox to
	// drain and every user to have its profile, audit record and mail.
	longDrainTimeout = 3 * time.Minute
	// longMargin is what the test needs besides the load: start-up, the
	// drain and the reconciliation of every user.
	longMargin = longDrainTimeout + 3*time.Minute
)

// TestSoakLong is the long soak: the API (minimal argon2 hashing, no rate
// limit), two relays and the worker (email to a mail sink, profile, audit)
// run as processes against an embedded NATS and a cluster of the soak's
// own, while an open-loop pacer signs up longRate users a second for
// OUTBOXD_SOAK_DURATION, without faults. Every minute it samples each
// process's RSS and CPU time (from /proc), the outbox's size and rows, the
// bytes per row of inbox and audit_log, and commit → publish latency. It
// writes samples.csv, soak.svg and table.md to OUTBOXD_SOAK_OUT and logs
// the table; then it requires every user reconciled, no outboxd process's
// RSS grown by more than rssGrowthLimit since the warm-up, and no outbox
// backlog.
//
// It is an opt-in independent of -short: without OUTBOXD_SOAK_DURATION it
// returns at once, saying how to run it, so CI never runs it.
//
//	OUTBOXD_SOAK_DURATION=30m go test -run TestSoakLong -timeout 40m -v ./internal/soak/
func TestSoakLong(t *testing.T) {
	raw := os.Getenv(envLongDuration)
	if raw == "" {
		t.Logf("the long soak runs only when asked: %s=30m [%s=wal|poll] [%s=dir] go test -run TestSoakLong -timeout 40m -v ./internal/soak/",
			envLongDuration, envLongCapture, envLongOut)
		return
	}
	dur, err := time.ParseDuration(raw)
	require.NoError(t, err, "%s", envLongDuration)
	minutes := int(dur / time.Minute)
	require.GreaterOrEqual(t, minutes, 2, "%s: at least 2m, in whole minutes", envLongDuration)
	if dl, ok := t.Deadline(); ok && time.Until(dl) < time.Duration(minutes)*time.Minute+longMargin {
		t.Fatalf("a %d-minute soak needs about %s: run go test with -timeout %s",
			minutes, time.Duration(minutes)*time.Minute+longMargin, (time.Duration(minutes)*time.Minute + longMargin + 5*time.Minute).Round(time.Minute))
	}
	captureName := os.Getenv(envLongCapture)
	if captureName == "" {
		captureName = "wal"
	}
	var mode soakMode
	for _, m := range soakModes {
		if m.name == captureName {
			mode = m
		}
	}
	require.NotEmpty(t, mode.name, "%s: wal or poll, not %q", envLongCapture, captureName)
	out := os.Getenv(envLongOut)
	if out == "" {
		out, err = os.MkdirTemp("", "outboxd-soak-long-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(out, 0o755))
	t.Logf("long soak: %d minutes at %d signups/s, capture %s; outputs in %s", minutes, longRate, mode.name, out)

	r := startLongRun(t, mode, out)
	samples := r.load(t, minutes)
	drained := r.waitDrained(t, longDrainTimeout)

	// Latency per minute again, now that every message has arrived.
	for k := 1; k < len(samples); k++ {
		samples[k].lat = r.journeys.window(samples[k-1].at, samples[k].at)
	}
	warm := min(longWarmupMinutes, minutes/2)
	leader := r.leaderName(t)
	names := r.names(leader)
	csvNames := make([]string, 0, len(names))
	for _, p := range r.procs {
		csvNames = append(csvNames, p.name)
	}
	require.NoError(t, writeSamplesCSV(filepath.Join(out, "samples.csv"), append(csvNames, "soak"), samples))
	require.NoError(t, writeSoakChart(filepath.Join(out, "soak.svg"),
		fmt.Sprintf("outboxd long soak: %d signups/s for %d min, relay capture %s", longRate, minutes, mode.name),
		sampleMinutes(samples), float64(warm), soakPanels(names[:len(r.procs)], samples)))
	table := longTable(names, samples, warm, mode.name)
	require.NoError(t, os.WriteFile(filepath.Join(out, "table.md"), []byte(table), 0o644))
	r.writeLogs(t, out)
	t.Logf("samples.csv, soak.svg, table.md and the processes' logs are in %s\n\n%s", out, table)

	o := r.pacer.outcome()
	t.Logf("signups: %d due, %d skipped for the in-flight bound, by status %v, %d failed; %d messages received by the soak's subscriber (%d again, %d unreadable)",
		o.due, o.skipped, o.byStatus, o.failures, r.journeys.count(), r.journeys.repeats, r.journeys.bad)
	require.Zero(t, o.failures, "every signup is answered 201 in a run without faults: %v", o.firstErr)
	require.LessOrEqual(t, float64(o.skipped), longSkippedLimit*float64(o.due), "signups skipped because %d were in flight", longMaxInFlight)
	require.True(t, drained, "the outbox drains and every user gets its consequences within %s of the load", longDrainTimeout)
	for _, p := range r.procs {
		dead, err := p.exited()
		require.False(t, dead, "%s exited by itself: %v", p.name, err)
	}
	r.reconcile(t)
	r.checkCapture(t, mode)
	checkFlat(t, names, samples, warm)
}

// longRun is a long soak's processes and instruments.
type longRun struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	sink     *mailSink
	procs    []*process // api, relay-0, relay-1, worker
	relays   []*process
	httpURL  string
	nc       *nats.Conn // the soak's own subscriber's
	journeys *journeys
	pacer    *pacer
}

// startLongRun starts the cluster, NATS, the mail sink, the processes and
// the connection of the soak's own subscriber, and returns once the API
// answers and a relay leads.
func startLongRun(t *testing.T, mode soakMode, out string) *longRun {
	ctx := context.Background()
	pg := newCluster(t, walSettings...)
	dsn, pool := pg.createPool(t, "outboxd_soak_long")
	natsURL := startNATS(t)
	sink := newMailSink(t)

	common := []string{"DATABASE_URL=" + dsn, "BROKER=nats", "BROKER_URL=" + natsURL, "LOG_FORMAT=text"}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := &longRun{ctx: ctx, pool: pool, sink: sink, httpURL: "http://" + httpAddr}
	api := startProcess(t, "api", append(append(common, mode.apiEnv...),
		"HTTP_ADDR="+httpAddr, "SIGNUP_RATE_LIMIT=0", "LOG_LEVEL=warn",
		"ARGON2_MEMORY_KIB=64", "ARGON2_ITERATIONS=1", "ARGON2_PARALLELISM=1"), "api")
	for i := range 2 {
		r.relays = append(r.relays, startProcess(t, fmt.Sprintf("relay-%d", i),
			append(append(common, mode.relayEnv...), "ADMIN_ADDR=127.0.0.1:0"), "relay"))
	}
	worker := startProcess(t, "worker", append(common, "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=warn",
		"SMTP_ADDR="+sink.addr, "MAIL_FROM=outboxd <noreply@outboxd.test>", "SMTP_TLS=none"), "worker")
	r.procs = append(append([]*process{api}, r.relays...), worker)
	waitHTTP(t, r.httpURL+"/healthz", 60*time.Second)
	waitFor(t, 60*time.Second, "a relay leads", func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM relay_leader WHERE heartbeat_at > now() - interval '10 seconds'`).Scan(&n))
		return n > 0 && (mode.name != "wal" || countLogs(r.relays, "relay: streaming the WAL") > 0)
	})

	var err error
	r.nc, err = nats.Connect(natsURL, nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(r.nc.Close)
	return r
}

// load runs the pacer for minutes and samples at its start and at the end
// of every minute; it returns the samples once the signups in flight have
// been answered.
func (r *longRun) load(t *testing.T, minutes int) []sample {
	start := time.Now()
	r.journeys = newJourneys(start)
	_, err := r.journeys.subscribe(r.nc, event.TopicUserCreated)
	require.NoError(t, err)
	require.NoError(t, r.nc.Flush())
	r.pacer = newPacer(r.httpURL, longRate, longMaxInFlight, r.journeys.signedUp)
	ctx, stop := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.pacer.run(ctx)
	}()
	t.Cleanup(func() { stop(); <-done })

	samples := []sample{r.sample(t, 0, start, nil)}
	for k := 1; k <= minutes; k++ {
		time.Sleep(time.Until(start.Add(time.Duration(k) * time.Minute)))
		s := r.sample(t, k, start, &samples[k-1])
		samples = append(samples, s)
		var rss, cpu []string
		for i, p := range r.procs {
			rss = append(rss, fmt.Sprintf("%s %.0f", p.name, float64(s.procs[i].rssKiB)/1024))
			cpu = append(cpu, fmt.Sprintf("%s %.0f", p.name, s.cpuPer1k(i)))
		}
		t.Logf("minute %d: %d messages (%d in all); RSS MiB: %s; CPU ms/1k messages: %s; outbox %d rows, %d KiB, %d dead tuples; p99 %.1f ms from the 201, %.1f ms from enqueued_at (%d of the minute's signups, %d not received yet)",
			k, s.messages, s.total, strings.Join(rss, ", "), strings.Join(cpu, ", "),
			s.tables.outboxRows, s.tables.outboxBytes/1024, s.tables.outboxDead, s.lat.p99, s.lat.p99Enqueued, s.lat.n, s.lat.unreceived)
	}
	stop()
	<-done
	return samples
}

// sample reads every process and table; prev is the sample a minute
// before, nil for the first.
func (r *longRun) sample(t *testing.T, minute int, start time.Time, prev *sample) sample {
	t.Helper()
	s := sample{minute: minute, at: time.Since(start), total: r.journeys.count()}
	for _, p := range r.procs {
		dead, err := p.exited()
		require.False(t, dead, "%s exited by itself during the load: %v", p.name, err)
	}
	pids := make([]int, 0, len(r.procs)+1)
	for _, p := range r.procs {
		pids = append(pids, p.pid())
	}
	pids = append(pids, os.Getpid())
	for i, pid := range pids {
		st, err := readProc(pid)
		require.NoError(t, err)
		ps := procSample{procStat: st}
		if prev != nil {
			ps.cpuDelta = st.cpu - prev.procs[i].cpu
		}
		s.procs = append(s.procs, ps)
	}
	var err error
	s.tables, err = readTables(r.ctx, r.pool)
	require.NoError(t, err)
	if prev != nil {
		s.messages = s.total - prev.total
		s.lat = r.journeys.window(prev.at, s.at)
	}
	return s
}

// names are the sampled processes' names, the leading relay marked, and
// last the test process itself.
func (r *longRun) names(leader string) []string {
	var out []string
	for _, p := range r.procs {
		n := p.name
		if n == leader {
			n += " (leader)"
		}
		out = append(out, n)
	}
	return append(out, "soak")
}

// leaderName is the name of the relay process that holds the leader lock,
// "" when none is known.
func (r *longRun) leaderName(t *testing.T) string {
	var name string
	if err := r.pool.QueryRow(r.ctx, `SELECT name FROM relay_leader WHERE heartbeat_at > now() - interval '10 seconds'`).Scan(&name); err != nil {
		t.Logf("no live relay leader: %v", err)
		return ""
	}
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		if pid, err := strconv.Atoi(name[i+1:]); err == nil {
			for _, p := range r.relays {
				if p.pid() == pid {
					return p.name
				}
			}
		}
	}
	return ""
}

// waitDrained waits until the outbox is empty and every user answered 201
// has its profile, audit record and mail, and reports whether that
// happened within timeout.
func (r *longRun) waitDrained(t *testing.T, timeout time.Duration) bool {
	began := time.Now()
	created := len(r.journeys.createdIDs())
	var status string
	for {
		var users, outboxRows, profiles, audits int
		require.NoError(t, r.pool.QueryRow(r.ctx, `
SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM outbox), (SELECT count(*) FROM profiles),
	(SELECT count(*) FROM audit_log WHERE event = $1)`, event.TopicUserCreated).Scan(&users, &outboxRows, &profiles, &audits))
		mailed := r.sink.addresses()
		status = fmt.Sprintf("answered 201 %d, users %d, outbox %d, profiles %d, audited %d, mailed %d (%d mails)",
			created, users, outboxRows, profiles, audits, mailed, r.sink.count())
		if outboxRows == 0 && users >= created && profiles == users && audits >= users && mailed >= users {
			t.Logf("drained %s after the load: %s", time.Since(began).Round(time.Millisecond), status)
			return true
		}
		if time.Since(began) > timeout {
			t.Logf("not drained within %s: %s", timeout, status)
			return false
		}
		time.Sleep(2 * time.Second)
	}
}

// reconcile checks every user: one profile, one audit record of its one
// user.created message, and welcome mails all carrying that message's
// Message-ID; every 201 has its user and every user its 201; no dead
// letters. Problems are counted and the first few shown, rather than
// stopping at the first of hundreds of thousands of users.
func (r *longRun) reconcile(t *testing.T) {
	created := r.journeys.createdIDs()
	rows, err := r.pool.Query(r.ctx, `
SELECT u.id, u.email,
	(SELECT count(*) FROM profiles p WHERE p.user_id = u.id),
	coalesce((SELECT array_agg(a.message_id) FROM audit_log a WHERE a.subject = u.id::text AND a.event = $1), '{}')
FROM users u`, event.TopicUserCreated)
	require.NoError(t, err)
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 10 {
			problems = append(problems, "…")
		}
	}
	nproblems, users, repeats := 0, 0, 0
	seen := make(map[uuid.UUID]bool, len(created))
	for rows.Next() {
		var (
			id         uuid.UUID
			email      string
			profiles   int
			messageIDs []uuid.UUID
		)
		require.NoError(t, rows.Scan(&id, &email, &profiles, &messageIDs))
		users++
		seen[id] = true
		bad := func(format string, args ...any) {
			nproblems++
			problem("user %s: "+format, append([]any{id}, args...)...)
		}
		if !created[id] {
			bad("exists without a 201 in a run without faults")
		}
		if profiles != 1 {
			bad("%d profiles", profiles)
		}
		if len(messageIDs) != 1 {
			bad("%d audit records of %s", len(messageIDs), event.TopicUserCreated)
			continue
		}
		got := r.sink.messageIDs(email)
		want := mail.MessageID(messageIDs[0])
		if len(got) != 1 || got[want] == 0 {
			bad("welcome mails by Message-ID %v, want only %s", got, want)
			continue
		}
		repeats += got[want] - 1
	}
	require.NoError(t, rows.Err())
	for id := range created {
		if !seen[id] {
			nproblems++
			problem("the 201 of user %s has no user", id)
		}
	}
	var deadLetters, relayDeadLetters int
	require.NoError(t, r.pool.QueryRow(r.ctx, `SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM outbox_dead_letters)`).
		Scan(&deadLetters, &relayDeadLetters))
	t.Logf("reconciled %d users against %d 201s: %d problems; %d welcome mails sent more than once; %d handler and %d relay dead letters",
		users, len(created), nproblems, repeats, deadLetters, relayDeadLetters)
	require.Zero(t, nproblems, "every user reconciled:\n%s", strings.Join(problems, "\n"))
	require.Zero(t, deadLetters, "no handler dead letters")
	require.Zero(t, relayDeadLetters, "no relay dead letters")
}

// checkCapture requires the relays to have captured as mode says: in wal
// one slot, streamed from, in poll none.
func (r *longRun) checkCapture(t *testing.T, mode soakMode) {
	var slots int
	require.NoError(t, r.pool.QueryRow(r.ctx,
		`SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&slots))
	streams := countLogs(r.relays, "relay: streaming the WAL")
	if mode.name == "poll" {
		require.Zero(t, slots, "poll: no replication slot")
		require.Zero(t, streams, "poll: no relay streamed the WAL")
		return
	}
	require.Equal(t, 1, slots, "wal: the relays share one replication slot")
	require.Positive(t, streams, "wal: a relay streamed the WAL")
}

// writeLogs writes each process's output to out/<name>.log.
func (r *longRun) writeLogs(t *testing.T, out string) {
	for _, p := range r.procs {
		require.NoError(t, os.WriteFile(filepath.Join(out, p.name+".log"), []byte(p.logs.String()), 0o644))
	}
}

// checkFlat fails the run if an outboxd process's RSS grew by more than
// rssGrowthLimit from the warm-up minute to the end, or the outbox held
// more than outboxBacklogLimit rows in two samples in a row from the
// warm-up on. The last name, the test process, holds the load, NATS and
// every user's journey, so it grows by design and is not checked.
func checkFlat(t *testing.T, names []string, samples []sample, warm int) {
	first, last := samples[warm], samples[len(samples)-1]
	for i, n := range names[:len(names)-1] {
		from, to := first.procs[i].rssKiB, last.procs[i].rssKiB
		require.LessOrEqual(t, float64(to), float64(from)*(1+rssGrowthLimit),
			"%s: RSS %d KiB at minute %d, %d KiB at minute %d: more than %.0f %% growth", n, from, warm, to, last.minute, rssGrowthLimit*100)
	}
	for k := warm + 1; k < len(samples); k++ {
		a, b := samples[k-1].tables.outboxRows, samples[k].tables.outboxRows
		require.False(t, a > outboxBacklogLimit && b > outboxBacklogLimit,
			"the outbox held %d rows at minute %d and %d at minute %d: the drain falls behind (limit %d)", a, k-1, b, k, outboxBacklogLimit)
	}
}

// sampleMinutes is each sample's minute, for the chart's x axis.
func sampleMinutes(samples []sample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = float64(s.minute)
	}
	return out
}

// soakPanels are the chart's panels: RSS and CPU per 1,000 messages of each
// outboxd process, the outbox, commit → publish p99, and inbox and
// audit_log bytes per row.
func soakPanels(procNames []string, samples []sample) []chartPanel {
	series := func(f func(sample) float64) []float64 {
		out := make([]float64, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	var rss, cpu []chartLine
	for i, n := range procNames {
		rss = append(rss, chartLine{n, series(func(s sample) float64 { return float64(s.procs[i].rssKiB) / 1024 })})
		cpu = append(cpu, chartLine{n, series(func(s sample) float64 { return s.cpuPer1k(i) })})
	}
	lat := func(f func(latencyStats) float64) []float64 {
		return series(func(s sample) float64 {
			if s.lat.n == 0 {
				return math.NaN()
			}
			return f(s.lat)
		})
	}
	return []chartPanel{
		{title: "RSS, MiB", lines: rss},
		{title: "CPU ms per 1,000 messages (each minute)", lines: cpu},
		{title: "outbox rows at each sample", lines: []chartLine{
			{"rows", series(func(s sample) float64 { return float64(s.tables.outboxRows) })},
			{"dead tuples", series(func(s sample) float64 { return float64(s.tables.outboxDead) })},
		}},
		{title: "outbox size, KiB (pg_total_relation_size)", lines: []chartLine{
			{"outbox", series(func(s sample) float64 { return float64(s.tables.outboxBytes) / 1024 })},
		}},
		{title: "commit → publish p99 of each minute's signups, ms", lines: []chartLine{
			{"from the 201", lat(func(l latencyStats) float64 { return l.p99 })},
			{"from enqueued_at", lat(func(l latencyStats) float64 { return l.p99Enqueued })},
		}},
		{title: "bytes per row (pg_total_relation_size / count)", lines: []chartLine{
			{"inbox", series(func(s sample) float64 { return nanIfZero(perRow(s.tables.inboxBytes, s.tables.inboxRows)) })},
			{"audit_log", series(func(s sample) float64 { return nanIfZero(perRow(s.tables.auditBytes, s.tables.auditRows)) })},
		}},
	}
}

func nanIfZero(v float64) float64 {
	if v == 0 {
		return math.NaN()
	}
	return v
}

// longTable is the run's Markdown table: each measure at the warm-up
// minute and the last, and the slope between.
func longTable(names []string, samples []sample, warm int, capture string) string {
	first, last := samples[warm], samples[len(samples)-1]
	span := float64(last.minute - first.minute)
	var b strings.Builder
	fmt.Fprintf(&b, "Long soak, relay capture %s, %d signups/s for %d minutes (%d messages received)\n\n",
		capture, longRate, last.minute, last.total)
	fmt.Fprintf(&b, "| figure | minute %d | minute %d | slope per minute | change |\n| --- | ---: | ---: | ---: | ---: |\n", first.minute, last.minute)
	row := func(name, format string, a, z float64) {
		change := "–"
		if a != 0 && !math.IsNaN(a) && !math.IsNaN(z) {
			change = fmt.Sprintf("%+.1f %%", (z-a)/a*100)
		}
		fmt.Fprintf(&b, "| %s | "+format+" | "+format+" | %+.3g | %s |\n", name, a, z, (z-a)/span, change)
	}
	for i, n := range names {
		label := n
		if i == len(names)-1 {
			label = "soak test process (load, NATS, subscriber, mail sink; not checked)"
		}
		row("RSS "+label+", MiB", "%.1f", float64(first.procs[i].rssKiB)/1024, float64(last.procs[i].rssKiB)/1024)
	}
	for i, n := range names[:len(names)-1] {
		row("CPU "+n+", ms per 1,000 messages", "%.0f", first.cpuPer1k(i), last.cpuPer1k(i))
	}
	row("outbox rows", "%.0f", float64(first.tables.outboxRows), float64(last.tables.outboxRows))
	row("outbox size, KiB", "%.0f", float64(first.tables.outboxBytes)/1024, float64(last.tables.outboxBytes)/1024)
	row("commit → publish p99, ms (from the 201)", "%.1f", first.lat.p99, last.lat.p99)
	row("commit → publish p99, ms (from enqueued_at)", "%.1f", first.lat.p99Enqueued, last.lat.p99Enqueued)
	row("inbox bytes per row", "%.0f", perRow(first.tables.inboxBytes, first.tables.inboxRows), perRow(last.tables.inboxBytes, last.tables.inboxRows))
	row("audit_log bytes per row", "%.0f", perRow(first.tables.auditBytes, first.tables.auditRows), perRow(last.tables.auditBytes, last.tables.auditRows))
	fmt.Fprintf(&b, "\nInbox rows %d and audit_log rows %d at the end (%.2f inbox rows per message). "+
		"Latency is of each minute's signups: from the 201 (after the commit, a lower bound) and from enqueued_at, "+
		"the outbox row's created_at (the writing transaction's start, an upper bound), to the soak's core NATS subscription on %s.\n",
		last.tables.inboxRows, last.tables.auditRows, float64(last.tables.inboxRows)/math.Max(1, float64(last.total)), event.TopicUserCreated)
	return b.String()
}
