package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// Sizes of the worker benchmark's raw loops.
const (
	// rawWorkerConns is how many connections the raw SQL loop writes on,
	// and how many mails the raw mail loop sends at once.
	rawWorkerConns = 4
	// rawWorkerTxUsers is how many users' rows one transaction of the raw
	// SQL loop writes.
	rawWorkerTxUsers = 100
)

// pollLoop runs poll every interval, at once first, until poll reports
// done, fails or ctx ends. A failure is handed to failed unless ctx has
// ended. The returned stop ends the loop and waits for it.
func pollLoop(ctx context.Context, interval time.Duration, poll func(context.Context) (done bool, err error), failed func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			done, err := poll(ctx)
			if err != nil {
				if ctx.Err() == nil {
					failed(err)
				}
				return
			}
			if done || !sleepCtx(ctx, interval) {
				return
			}
		}
	}()
	return func() {
		cancel()
		<-ended
	}
}

// effectPollInterval is how often a drain counts the committed profile and
// audit rows: each count scans the tables, which hold up to --messages
// rows, so a tighter poll would take a core's share from the worker it
// measures; 200 ms is under 1 % of a 200,000-message drain.
const effectPollInterval = 200 * time.Millisecond

// drainTimeout bounds one drain of the worker benchmark.
const drainTimeout = 30 * time.Minute

// effectPoller counts the committed profile and audit rows every
// effectPollInterval, each table until it holds n, and notes when each got
// there: the time the poll that saw it was sent.
type effectPoller struct {
	pool                *pgxpool.Pool
	n                   int64
	profiles, audit     atomic.Int64
	done                atomic.Int64 // the smaller count, for progress
	mu                  sync.Mutex
	profilesAt, auditAt time.Time
	err                 error
	stop                func()
}

// startEffectPoller polls until stop or until both tables hold n rows.
func (e *env) startEffectPoller(ctx context.Context, n int) *effectPoller {
	p := &effectPoller{pool: e.pool, n: int64(n)}
	p.stop = pollLoop(ctx, effectPollInterval, func(ctx context.Context) (bool, error) {
		profilesDone, auditDone := p.profiles.Load() >= p.n, p.audit.Load() >= p.n
		if profilesDone && auditDone {
			return true, nil
		}
		return false, p.poll(ctx, !profilesDone, !auditDone)
	}, func(err error) {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
	})
	return p
}

// poll counts the tables asked for, in one query, and notes the ones that
// now hold n rows as complete when the query was sent.
func (p *effectPoller) poll(ctx context.Context, profiles, audit bool) error {
	count := func(table string, want bool) string {
		if !want {
			return "-1"
		}
		return "(SELECT count(*) FROM " + table + ")"
	}
	var np, na int64
	sent := time.Now()
	if err := p.pool.QueryRow(ctx, `SELECT `+count("profiles", profiles)+`, `+count("audit_log", audit)).Scan(&np, &na); err != nil {
		return fmt.Errorf("count profile and audit rows: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if profiles {
		p.profiles.Store(np)
		if np >= p.n {
			p.profilesAt = sent
		}
	}
	if audit {
		p.audit.Store(na)
		if na >= p.n {
			p.auditAt = sent
		}
	}
	p.done.Store(min(p.profiles.Load(), p.audit.Load()))
	return nil
}

// result tells whether both tables hold n rows, when the later got there,
// and the poll's error, if any.
func (p *effectPoller) result() (complete bool, at time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.profilesAt.IsZero() || p.auditAt.IsZero() {
		return false, time.Time{}, p.err
	}
	return true, later(p.profilesAt, p.auditAt), p.err
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// rawEffectsSQL are the statements of one raw SQL transaction: the two
// handlers' inbox rows, the profiles and the audit records of a run of
// users, with the columns the handlers write.
var rawEffectsSQL = []string{
	`INSERT INTO inbox (handler, message_id) SELECT $1::text, unnest($2::uuid[])`,
	`INSERT INTO inbox (handler, message_id) SELECT $1::text, unnest($2::uuid[])`,
	`INSERT INTO profiles (user_id, display_name) SELECT * FROM unnest($1::uuid[], $2::text[])`,
	`INSERT INTO audit_log (event, actor, subject, occurred_at, correlation_id, message_id, payload)
	 SELECT $1, $2, s, o, c, m, p::jsonb FROM unnest($3::text[], $4::timestamptz[], $5::text[], $6::uuid[], $7::text[]) AS u(s, o, c, m, p)`,
}

// rawEffectsArgs are the arguments of rawEffectsSQL for users.
func rawEffectsArgs(users []workerUser) [][]any {
	var (
		msgIDs, userIDs      = make([]uuid.UUID, len(users)), make([]uuid.UUID, len(users))
		names, subjects, cor = make([]string, len(users)), make([]string, len(users)), make([]string, len(users))
		payloads             = make([]string, len(users))
		occurred             = make([]time.Time, len(users))
	)
	for i, u := range users {
		msgIDs[i], userIDs[i] = u.messageID, u.ev.UserID
		names[i], subjects[i], cor[i] = u.ev.Name, u.ev.UserID.String(), u.correlation
		payloads[i], occurred[i] = string(u.payload), u.ev.CreatedAt
	}
	return [][]any{
		{worker.HandlerProfile, msgIDs},
		{worker.HandlerAudit, msgIDs},
		{userIDs, names},
		{event.TopicUserCreated, worker.AuditActorSignup, subjects, occurred, cor, msgIDs, payloads},
	}
}

// rawEffects is the ceiling of the profile and audit handlers: the same
// rows written by plain batched SQL, rawWorkerTxUsers users a transaction
// on rawWorkerConns connections, into emptied tables, with the same count
// poll running as during the worker's drain. It returns users/s.
func (e *env) rawEffects(ctx context.Context, users []workerUser) (float64, error) {
	if err := e.resetWorkerTables(ctx, false); err != nil {
		return 0, err
	}
	type run struct {
		users int
		args  [][]any
	}
	var runs []run // built before the clock starts
	for start := 0; start < len(users); start += rawWorkerTxUsers {
		chunk := users[start:min(start+rawWorkerTxUsers, len(users))]
		runs = append(runs, run{users: len(chunk), args: rawEffectsArgs(chunk)})
	}
	poller := e.startEffectPoller(ctx, len(users))
	defer poller.stop()
	var (
		next, written atomic.Int64
		wg            sync.WaitGroup
		errs          = make([]error, rawWorkerConns)
	)
	label := fmt.Sprintf("worker: raw SQL loop, %d connections, %d users a transaction", rawWorkerConns, rawWorkerTxUsers)
	stopProgress := progress(e.cfg.Progress, label, int64(len(users)), &written)
	start := time.Now()
	for c := range rawWorkerConns {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(runs); i = int(next.Add(1) - 1) {
				err := txOp(ctx, e.pool, func(tx pgx.Tx) error {
					b := &pgx.Batch{}
					for j, sql := range rawEffectsSQL {
						b.Queue(sql, runs[i].args[j]...)
					}
					return tx.SendBatch(ctx, b).Close()
				})
				if err != nil {
					errs[c] = fmt.Errorf("raw SQL loop: %w", err)
					return
				}
				written.Add(int64(runs[i].users))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if err := e.checkEffects(ctx, len(users), false); err != nil {
		return 0, fmt.Errorf("raw SQL loop: %w", err)
	}
	return float64(len(users)) / took.Seconds(), nil
}

// checkEffects fails unless every user has its profile and audit row and
// its inbox rows of the handlers: profile and audit, and email with email.
func (e *env) checkEffects(ctx context.Context, n int, email bool) error {
	handlers := []string{worker.HandlerProfile, worker.HandlerAudit}
	if email {
		handlers = append(handlers, worker.HandlerEmail)
	}
	var profiles, audit, inboxRows int
	err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM audit_log),
		(SELECT count(*) FROM inbox WHERE handler = ANY($1))`, handlers).Scan(&profiles, &audit, &inboxRows)
	if err != nil {
		return fmt.Errorf("count the effects: %w", err)
	}
	if want := len(handlers) * n; profiles != n || audit != n || inboxRows != want {
		return fmt.Errorf("%d profiles, %d audit records, %d inbox rows of %v; want %d, %d and %d", profiles, audit, inboxRows, handlers, n, n, want)
	}
	return nil
}

// rawMails is the ceiling of the email handler: the users' welcome mails,
// rendered as the handler renders them, sent through mail.NewSMTP on
// mail.ConcurrencyDefault reused connections, sends of them at once, to
// sink. It returns mails/s.
func (e *env) rawMails(ctx context.Context, sink *smtpSink, users []workerUser, sends int) (mailLoop, error) {
	m, err := mail.NewSMTP(mail.SMTPConfig{
		Addr: sink.addr(), From: workerMailFrom, TLS: mail.TLSNone,
		Concurrency: mail.ConcurrencyDefault, Logger: e.cfg.Logger,
	})
	if err != nil {
		return mailLoop{}, err
	}
	defer func() { _ = m.Close() }()
	sink.expect(len(users))
	var (
		next, sent atomic.Int64
		wg         sync.WaitGroup
		errs       = make([]error, sends)
	)
	label := fmt.Sprintf("worker: raw mail loop, %d connections, %d sends at once", mail.ConcurrencyDefault, sends)
	stopProgress := progress(e.cfg.Progress, label, int64(len(users)), &sent)
	cpu := startCPU(0)
	start := time.Now()
	for c := range sends {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(users); i = int(next.Add(1) - 1) {
				u := users[i]
				w, err := mail.Welcome(u.ev, u.messageID)
				if err == nil {
					w.Headers = map[string]string{"X-Correlation-ID": u.correlation}
					err = m.Send(ctx, w)
				}
				if err != nil {
					errs[c] = fmt.Errorf("raw mail loop: %w", err)
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	used := cpu.stop()
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		return mailLoop{}, err
	}
	if got, _ := sink.received(); got != int64(len(users)) {
		return mailLoop{}, fmt.Errorf("raw mail loop: the sink received %d of %d mails", got, len(users))
	}
	return mailLoop{rate: float64(len(users)) / took.Seconds(), cpu: used}, nil
}

// mailLoop is a raw mail loop's rate and the CPU it used.
type mailLoop struct {
	rate float64
	cpu  *cpuTimes // nil without /proc
}

// drainResult is one drain of a backlog by the child worker.
type drainResult struct {
	// rate is users/s: every effect of the worker's handlers done.
	rate float64
	// rss are the worker's VmRSS samples during the drain, in MB.
	rss []float64
	// cpu is the CPU the drain used, from the worker's start to the last
	// effect seen; nil without /proc.
	cpu *cpuTimes
}

// workerDrain publishes the users' events as a backlog into a fresh
// stream, then starts `outboxd worker` with o and times it from its start
// until every profile and audit row is committed and, with an email
// handler, sink has every mail; it samples the worker's RSS meanwhile.
func (e *env) workerDrain(ctx context.Context, label string, users []workerUser, o workerOpts, sink *smtpSink) (drainResult, error) {
	n := len(users)
	if err := e.resetWorkerTables(ctx, false); err != nil {
		return drainResult{}, err
	}
	if err := e.publishBacklog(ctx, users); err != nil {
		return drainResult{}, err
	}
	if sink != nil {
		sink.expect(n)
		o.smtpAddr = sink.addr()
	}
	poller := e.startEffectPoller(ctx, n)
	defer poller.stop()
	var done atomic.Int64
	stopProgress := progress(e.cfg.Progress, label, int64(n), &done)
	cpu := startCPU(0)
	start := time.Now()
	w, err := e.startWorker(ctx, o)
	if err != nil {
		stopProgress()
		return drainResult{}, err
	}
	cpu.workerPID = w.pid()
	stopRSS := sampleRSS(w.pid())
	end, err := waitDrain(ctx, w, poller, sink, &done)
	used := cpu.stop()
	rss := stopRSS()
	stopProgress()
	err = errors.Join(err, w.stop())
	if err == nil {
		err = errors.Join(e.checkEffects(ctx, n, sink != nil), e.checkNoDeadLetters(ctx))
	}
	if err != nil {
		return drainResult{}, fmt.Errorf("%s: %w", label, err)
	}
	return drainResult{rate: float64(n) / end.Sub(start).Seconds(), rss: rss, cpu: used}, nil
}

// waitDrain waits until poller has seen every row and sink, if any, every
// mail, and returns when the last of them got there, keeping done at the
// users whose effects are all seen so far; it fails if the worker exits
// first or drainTimeout passes.
func waitDrain(ctx context.Context, w *workerProc, poller *effectPoller, sink *smtpSink, done *atomic.Int64) (time.Time, error) {
	deadline := time.Now().Add(drainTimeout)
	for {
		complete, end, err := poller.result()
		if err != nil {
			return time.Time{}, err
		}
		users := poller.done.Load()
		if sink != nil {
			mails, mailsAt := sink.received()
			users = min(users, mails)
			if mailsAt.IsZero() {
				complete = false
			} else {
				end = later(end, mailsAt)
			}
		}
		done.Store(users)
		if complete {
			return end, nil
		}
		if err := w.exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			mails := int64(-1)
			if sink != nil {
				mails, _ = sink.received()
			}
			return time.Time{}, fmt.Errorf("not drained after %s: %d profiles, %d audit records, %d mails (-1: no email handler)",
				drainTimeout, poller.profiles.Load(), poller.audit.Load(), mails)
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return time.Time{}, ctx.Err()
		}
	}
}
