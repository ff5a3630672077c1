package bench

import (
	"cmp"
	"context"
	"fmt"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// The worker benchmark's targets: the drain rates as a share of their raw
// loops', and how much the new worker's commit → profile p99 may exceed
// today's one-message-at-a-time worker's.
const (
	workerDrainTarget     = 0.25
	workerEmailTarget     = 0.5
	workerLatencyMarginMS = 2
)

// runWorker measures `outboxd worker`, run as a child process, against raw
// loops in the same run: the drain of a backlog waiting in NATS with the
// profile and audit handlers against a raw batched SQL loop writing the
// same rows; the drain with the email handler too, to a local SMTP sink,
// against a raw loop sending the same mails; commit → profile row
// committed at a steady rate, the new worker against today's (one message
// at a time); and the worker's RSS during the first drain.
func runWorker(ctx context.Context, e *env) ([]Table, error) {
	n := cmp.Or(e.cfg.Messages, MessagesDefault)
	dbHandlers := newWorkerOpts(worker.HandlerProfile, worker.HandlerAudit)
	withEmail := newWorkerOpts(worker.HandlerEmail, worker.HandlerProfile, worker.HandlerAudit)
	today := oneAtATime(worker.HandlerProfile, worker.HandlerAudit)

	users := newWorkerUsers(n)
	if err := e.insertUsers(ctx, users); err != nil {
		return nil, err
	}
	rawSQL, err := e.rawEffects(ctx, users)
	if err != nil {
		return nil, err
	}
	rawNATS, err := e.rawConsume(ctx, users, len(dbHandlers.handlers))
	if err != nil {
		return nil, err
	}
	rawNATSEmail, err := e.rawConsume(ctx, users, len(withEmail.handlers))
	if err != nil {
		return nil, err
	}
	drain, err := e.workerDrain(ctx, "worker: drain, profile + audit", users, dbHandlers, nil)
	if err != nil {
		return nil, err
	}

	sink, err := startSMTPSink(e.cfg.SMTPDelay)
	if err != nil {
		return nil, err
	}
	defer sink.close()
	rawMail, err := e.rawMails(ctx, sink, users, mail.ConcurrencyDefault)
	if err != nil {
		return nil, err
	}
	rawMailDeep, err := e.rawMails(ctx, sink, users, withEmail.concurrency)
	if err != nil {
		return nil, err
	}
	emailDrain, err := e.workerDrain(ctx, "worker: drain, email + profile + audit", users, withEmail, sink)
	if err != nil {
		return nil, err
	}

	todayLat, err := e.workerLatency(ctx, "worker latency: today's worker, one message at a time", today)
	if err != nil {
		return nil, err
	}
	newLat, err := e.workerLatency(ctx, "worker latency: new worker, defaults", dbHandlers)
	if err != nil {
		return nil, err
	}
	if err := writeLatencyChart(e.cfg.OutDir, "worker-latency.svg",
		fmt.Sprintf("commit → profile row at %d msg/s: today's worker vs the new one", e.cfg.Rate),
		todayLat.p99+workerLatencyMarginMS, []series{
			{"today's worker: one message at a time", todayLat},
			{"new worker: defaults", newLat},
		}); err != nil {
		return nil, err
	}
	return []Table{e.workerTable(n, workerFigures{
		rawSQL: rawSQL, rawNATS: rawNATS, rawNATSEmail: rawNATSEmail, drain: drain.rate, rawMail: rawMail.rate, rawMailDeep: rawMailDeep.rate, emailDrain: emailDrain.rate,
		today: todayLat, latest: newLat, rss: drain.rss, drainCPU: drain.cpu, emailCPU: emailDrain.cpu, rawMailCPU: rawMail.cpu,
	}, dbHandlers, today)}, nil
}

// workerFigures are the worker benchmark's measurements.
type workerFigures struct {
	rawSQL, rawNATS, drain, rawMail, emailDrain float64
	// rawNATSEmail is the raw consume loop with a consumer per handler of
	// the email drain.
	rawNATSEmail float64
	// rawMailDeep is the raw mail loop with as many sends at once as the
	// email handler makes (WORKER_CONCURRENCY), which the mailer streams.
	rawMailDeep   float64
	today, latest latencies
	rss           []float64
	// drainCPU, emailCPU and rawMailCPU are the CPU the two drains and the
	// raw mail loop used; nil without /proc.
	drainCPU, emailCPU, rawMailCPU *cpuTimes
}

// combinedCeiling is the fastest a drain can be when its sides, each alone
// as fast as one of rates, share the same cores: 1/(1/a + 1/b + …).
func combinedCeiling(rates ...float64) float64 {
	var sum float64
	for _, r := range rates {
		if r <= 0 {
			return 0
		}
		sum += 1 / r
	}
	if sum == 0 {
		return 0
	}
	return 1 / sum
}

// workerTable lays out the figures of a run with n messages, ours (o) and
// today's worker's settings.
func (e *env) workerTable(n int, f workerFigures, o, today workerOpts) Table {
	drain := Row{Figure: fmt.Sprintf("drain of %d messages, profile + audit: worker vs raw batched SQL loop", n), Unit: "users/s", Ours: f.drain, Baseline: f.rawSQL}
	drain.Goal = goal(drain.Ratio() >= workerDrainTarget, "≥ %.2f", workerDrainTarget)
	email := Row{Figure: fmt.Sprintf("drain of %d messages, email + profile + audit: worker users/s vs raw mail loop mails/s", n), Unit: "users/s", Ours: f.emailDrain, Baseline: f.rawMail}
	email.Goal = goal(email.Ratio() >= workerEmailTarget, "≥ %.1f", workerEmailTarget)
	ms := func(pct string, ours, base float64) Row {
		return Row{Figure: "commit → profile row " + pct + ": new worker vs today's", Unit: "ms", Ours: ours, Baseline: base, LowerIsBetter: true}
	}
	p99 := ms("p99", f.latest.p99, f.today.p99)
	p99.Goal = goal(f.latest.p99 <= f.today.p99+workerLatencyMarginMS, "≤ today's + %d ms", workerLatencyMarginMS)
	consume := Row{Figure: "the broker's side: raw nats.go consume loop (two durable pull consumers, each message acked)", Unit: "users/s", Ours: f.rawNATS}
	combined := Row{Figure: fmt.Sprintf("drain, profile + audit: worker vs combined ceiling 1/(1/raw SQL + 1/raw consume) = %.0f users/s", combinedCeiling(f.rawSQL, f.rawNATS)),
		Unit: "users/s", Ours: f.drain, Baseline: combinedCeiling(f.rawSQL, f.rawNATS)}
	emailCeiling := combinedCeiling(f.rawSQL, f.rawNATSEmail, f.rawMail)
	consumeEmail := Row{Figure: "the broker's side with email: raw nats.go consume loop (three durable pull consumers, each message acked)", Unit: "users/s", Ours: f.rawNATSEmail}
	emailCombined := Row{Figure: fmt.Sprintf("drain, email + profile + audit: worker vs combined ceiling 1/(1/raw SQL + 1/raw consume with email + 1/raw mail) = %.0f users/s", emailCeiling),
		Unit: "users/s", Ours: f.emailDrain, Baseline: emailCeiling}
	emailDeep := Row{Figure: fmt.Sprintf("drain, email + profile + audit: worker users/s vs raw mail loop with %d sends at once (the handler's) mails/s", o.concurrency),
		Unit: "users/s", Ours: f.emailDrain, Baseline: f.rawMailDeep}
	rows := []Row{drain, consume, combined, email, emailDeep, consumeEmail, emailCombined}
	cpu, cpuNote := cpuRows(n, f)
	rows = append(rows, cpu...)
	rows = append(rows, ms("p50", f.latest.p50, f.today.p50), ms("p95", f.latest.p95, f.today.p95), p99)
	rssNote := fmt.Sprintf("worker RSS: VmRSS of the child worker from /proc/<pid>/status every %s during the profile + audit drain, %d samples; MB = 2^20 bytes; no baseline", rssInterval, len(f.rss))
	if peak, median := peakAndMedian(f.rss); len(f.rss) > 0 {
		rows = append(rows,
			Row{Figure: "worker RSS during the profile + audit drain, peak", Unit: "MB", Ours: peak},
			Row{Figure: "worker RSS during the profile + audit drain, median", Unit: "MB", Ours: median},
		)
	} else {
		rssNote = "worker RSS: no sample (no /proc on this system, or the drain was shorter than a sample): no RSS rows"
	}
	return Table{
		Name: "worker",
		Title: fmt.Sprintf("worker: drains of %d messages waiting in NATS JetStream vs raw loops; commit → profile row at %d msg/s for %s, new worker vs today's",
			n, e.cfg.Rate, e.cfg.Duration),
		Baseline: "baseline",
		Rows:     rows,
		Notes: []string{
			fmt.Sprintf("ours is the real `outboxd worker`, run by the bench as a child process (the same binary) against the run's database and embedded NATS JetStream: BROKER=nats, %s (the defaults; each handler's subscription hands on what the handler holds, worker.Config.Held: max(WORKER_CONCURRENCY, 3 × WORKER_BATCH_SIZE) for profile and audit, max(WORKER_CONCURRENCY, WORKER_BATCH_SIZE) for email), LOG_LEVEL=warn", o.describe()),
			fmt.Sprintf("drains: %d users rows are committed first (COPY); their %d user.created messages (the relay's metadata: message_id, key, enqueued_at, correlation_id, traceparent) are published into a fresh user.created stream (the last run's deleted) before the worker starts; the worker creates its durable consumers, which read the whole backlog from the stream's start; the clock runs from the worker's start (process start, connections, subscriptions: included) until every profile and audit row is committed and, with email, the sink received every mail", n, n),
			fmt.Sprintf("drain completion is seen by counting profiles and audit_log every %s (each table until it is full), the time taken being that of the poll that saw it; the same poll runs during the raw SQL loop, so both pay its cost", effectPollInterval),
			fmt.Sprintf("raw batched SQL loop (drain's baseline): per user a profile row (user_id, display_name), an audit_log row (event, actor, subject, occurred_at, correlation_id, message_id, payload) and the inbox rows of handlers profile and audit, as the handlers write them, by multi-row INSERT … SELECT unnest(…) from %d connections in transactions of %d users, into emptied tables; its arguments are built before the clock starts; no broker, no savepoints, no ON CONFLICT", rawWorkerConns, rawWorkerTxUsers),
			fmt.Sprintf("raw consume loop (the broker's side): the same backlog in a fresh stream, read by nats.go from two durable pull consumers (one per database handler), and for the email drain from three, in fetches of %d, each message acked without waiting for the server's answer, as the worker acks; no database, no decoding; the combined ceiling is the fastest a drain can be when the database's side and the broker's (and, with email, the mail loop's) share the machine's two cores, as the relay benchmark's is; the email drain's ceiling leaves out the email handler's inbox lookups and records, so it is higher than the real one", rawConsumeFetch),
			fmt.Sprintf("email: a local SMTP sink on 127.0.0.1 (go-smtp, in the bench process, reads each mail whole, no TLS, each DATA answer held %s); the worker sends with SMTP_CONCURRENCY=%d, SMTP_TLS=none; the raw mail loop (email drain's baseline) renders each welcome mail as the handler does (mail.Welcome, same From, To, Subject, text and HTML body, X-Correlation-ID) and sends it through mail.NewSMTP on %d reused connections, %d at once, to the same sink (go-smtp offers PIPELINING and CHUNKING, so the mailer streams: BDAT, no round trip for DATA's 354, and several mails a connection once every connection is busy); a second raw loop sends %d at once, as many as the email handler does (WORKER_CONCURRENCY), so that each connection carries several; the email drain's figure is users/s with all three effects done", e.cfg.SMTPDelay, mail.ConcurrencyDefault, mail.ConcurrencyDefault, mail.ConcurrencyDefault, o.concurrency),
			fmt.Sprintf("latency: today's worker = the same binary with %s (the broker's InFlight 1): one message at a time per handler and a transaction per message, as before batching, through the same code path (batches of one); new = %s; both run profile and audit, on empty tables and a fresh stream whose consumers the worker creates, and the load starts once both handlers are subscribed", today.describe(), o.describe()),
			fmt.Sprintf("latency: each message is one users row committed by the bench, whose user.created the bench publishes to NATS itself right after the commit (no outbox row, no relay: its latency is not part of these figures); the clock starts when COMMIT returns; the profile row is detected by polling SELECT user_id FROM profiles WHERE user_id = ANY(pending ids) with %s between polls, the same for both workers, a row counting as committed when the poll that saw it was sent", profilePollInterval),
			fmt.Sprintf("targets: drain ≥ %.2f of the raw SQL loop; email drain ≥ %.1f of the raw mail loop; new p99 ≤ today's p99 + %d ms", workerDrainTarget, workerEmailTarget, workerLatencyMarginMS),
			rssNote,
			cpuNote,
			"the worker, PostgreSQL, NATS, the SMTP sink and the bench's own loops and polls share the machine's cores: one drain, loop or latency run at a time",
			"worker-latency.svg draws both workers' commit → profile p50/p95/p99",
		},
	}
}
