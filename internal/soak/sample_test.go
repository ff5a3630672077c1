package soak_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/outbox"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// the kernel reports them in hundredths of a second on every architecture
// Go runs Linux on, whatever its internal HZ.
const clockTicks = 100

// procStat is what /proc says of a process: its resident set and the CPU
// time it has used, user and system.
type procStat struct {
	rssKiB int64
	cpu    time.Duration
}

// readProc reads VmRSS from /proc/<pid>/status and utime + stime from
// /proc/<pid>/stat.
func readProc(pid int) (procStat, error) {
	var ps procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	found := false
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) != 2 || f[1] != "kB" {
				return ps, fmt.Errorf("pid %d: VmRSS line %q", pid, line)
			}
			if ps.rssKiB, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return ps, fmt.Errorf("pid %d: VmRSS: %w", pid, err)
			}
			found = true
		}
	}
	if !found {
		return ps, fmt.Errorf("pid %d: no VmRSS in /proc status (a zombie?)", pid)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields are counted from the last ')'. State is field 3, utime 14,
	// stime 15.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat)[i+1:])
	if i < 0 || len(f) < 13 {
		return ps, fmt.Errorf("pid %d: /proc stat %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ps, fmt.Errorf("pid %d: utime %q stime %q", pid, f[11], f[12])
	}
	ps.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	return ps, nil
}

// tableStats are the sizes of the tables a long run watches: the outbox
// must stay small, inbox and audit_log grow by design (one row per message
// and handler, one per user; retention 168 h).
type tableStats struct {
	outboxRows, outboxBytes, outboxDead int64
	inboxRows, inboxBytes               int64
	auditRows, auditBytes               int64
	users                               int64
}

func readTables(ctx context.Context, pool *pgxpool.Pool) (tableStats, error) {
	var s tableStats
	err := pool.QueryRow(ctx, `
SELECT pg_total_relation_size('outbox'), (SELECT count(*) FROM outbox),
	coalesce((SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass), 0),
	pg_total_relation_size('inbox'), (SELECT count(*) FROM inbox),
	pg_total_relation_size('audit_log'), (SELECT count(*) FROM audit_log),
	(SELECT count(*) FROM users)`).Scan(&s.outboxBytes, &s.outboxRows, &s.outboxDead,
		&s.inboxBytes, &s.inboxRows, &s.auditBytes, &s.auditRows, &s.users)
	return s, err
}

// perRow is bytes / rows, 0 for no rows.
func perRow(bytes, rows int64) float64 {
	if rows == 0 {
		return 0
	}
	return float64(bytes) / float64(rows)
}

// journey is one user's way through the pipeline, as offsets from the
// start of the load: when its signup's 201 arrived, when its message was
// enqueued (the outbox row's created_at, from the enqueued_at metadata)
// and when the soak's own subscriber first received the message. Zero is
// "not yet".
type journey struct {
	created, enqueued, received time.Duration
}

// journeys records every user's journey. The subscriber is a core NATS
// subscription on user.created: it sees each publish of the relay as it
// reaches the broker, beside the stream's own capture, and takes no part
// in the worker's consumer groups.
type journeys struct {
	start time.Time

	mu       sync.Mutex
	byUser   map[uuid.UUID]*journey
	received int // distinct messages received
	repeats  int // messages received again (a relay re-publish)
	bad      int // messages without a user id key or enqueued_at
}

func newJourneys(start time.Time) *journeys {
	return &journeys{start: start, byUser: map[uuid.UUID]*journey{}}
}

func (j *journeys) get(id uuid.UUID) *journey {
	r := j.byUser[id]
	if r == nil {
		r = &journey{}
		j.byUser[id] = r
	}
	return r
}

// signedUp records a 201 for user id.
func (j *journeys) signedUp(id uuid.UUID, at time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.get(id).created = at.Sub(j.start)
}

// subscribe receives user.created on nc until the subscription ends.
func (j *journeys) subscribe(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		at := time.Now()
		id, err := uuid.Parse(m.Header.Get(outbox.MetadataKey))
		enq, err2 := time.Parse(time.RFC3339Nano, m.Header.Get(outbox.MetadataEnqueuedAt))
		j.mu.Lock()
		defer j.mu.Unlock()
		if err != nil || err2 != nil {
			j.bad++
			return
		}
		r := j.get(id)
		if r.received != 0 {
			j.repeats++
			return
		}
		r.received, r.enqueued = at.Sub(j.start), enq.Sub(j.start)
		j.received++
	})
	if err != nil {
		return nil, err
	}
	// The handler is quick, but a long run must never drop a message for a
	// slow consumer.
	return sub, sub.SetPendingLimits(-1, -1)
}

// count is the number of distinct messages received so far.
func (j *journeys) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.received
}

// createdIDs returns the user ids that were answered 201.
func (j *journeys) createdIDs() map[uuid.UUID]bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[uuid.UUID]bool, len(j.byUser))
	for id, r := range j.byUser {
		if r.created != 0 {
			out[id] = true
		}
	}
	return out
}

// latencyStats are the commit → publish latencies of the messages whose
// signup was answered in a window: from the 201 (which follows the commit,
// so this is at most the true latency) and from enqueued_at (the writing
// transaction's start, before the commit, so at least the true latency).
type latencyStats struct {
	n             int
	p50, p99      float64 // ms, from the 201
	p99Enqueued   float64 // ms, from enqueued_at
	maxFromCommit float64 // ms, from the 201
	unreceived    int     // answered 201 in the window but not received
}

// window computes latencyStats over the signups answered 201 in [from, to).
func (j *journeys) window(from, to time.Duration) latencyStats {
	j.mu.Lock()
	var fromCreated, fromEnqueued []float64
	var st latencyStats
	for _, r := range j.byUser {
		if r.created == 0 || r.created < from || r.created >= to {
			continue
		}
		if r.received == 0 {
			st.unreceived++
			continue
		}
		fromCreated = append(fromCreated, ms(r.received-r.created))
		fromEnqueued = append(fromEnqueued, ms(r.received-r.enqueued))
	}
	j.mu.Unlock()
	st.n = len(fromCreated)
	if st.n == 0 {
		return st
	}
	slices.Sort(fromCreated)
	slices.Sort(fromEnqueued)
	st.p50, st.p99 = quantile(fromCreated, 0.50), quantile(fromCreated, 0.99)
	st.p99Enqueued = quantile(fromEnqueued, 0.99)
	st.maxFromCommit = fromCreated[len(fromCreated)-1]
	return st
}

// quantile is the nearest-rank q-quantile of sorted.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sample is one minute of a long run: the state at its end, and what
// happened during it.
type sample struct {
	minute   int
	at       time.Duration // since the load began
	messages int           // distinct messages received during the minute
	total    int           // distinct messages received so far
	procs    []procSample  // in the order of the run's process list
	tables   tableStats
	lat      latencyStats // of the signups answered during the minute
}

// procSample is one process in one sample.
type procSample struct {
	procStat
	cpuDelta time.Duration // CPU used during the minute
}

// cpuPer1k is the CPU milliseconds a process used per 1,000 messages
// during the minute, NaN for a minute without messages.
func (s sample) cpuPer1k(i int) float64 {
	if s.messages == 0 {
		return math.NaN()
	}
	return ms(s.procs[i].cpuDelta) * 1000 / float64(s.messages)
}

// writeSamplesCSV writes one row per sample, with a column per process and
// measure, as path.
func writeSamplesCSV(path string, names []string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"minute", "elapsed_s", "messages", "messages_total"}
	for _, n := range names {
		head = append(head, "rss_kib_"+n, "cpu_ms_"+n, "cpu_ms_per_1k_"+n)
	}
	head = append(head, "outbox_rows", "outbox_bytes", "outbox_dead_tuples",
		"inbox_rows", "inbox_bytes", "inbox_bytes_per_row",
		"audit_rows", "audit_bytes", "audit_bytes_per_row", "users",
		"latency_n", "p50_ms_from_201", "p99_ms_from_201", "max_ms_from_201", "p99_ms_from_enqueued_at", "unreceived")
	_ = w.Write(head)
	for _, s := range samples {
		row := []string{strconv.Itoa(s.minute), fmt.Sprintf("%.1f", s.at.Seconds()), strconv.Itoa(s.messages), strconv.Itoa(s.total)}
		for i := range names {
			p := s.procs[i]
			row = append(row, strconv.FormatInt(p.rssKiB, 10), strconv.FormatInt(p.cpu.Milliseconds(), 10), csvFloat(s.cpuPer1k(i)))
		}
		tb := s.tables
		row = append(row,
			strconv.FormatInt(tb.outboxRows, 10), strconv.FormatInt(tb.outboxBytes, 10), strconv.FormatInt(tb.outboxDead, 10),
			strconv.FormatInt(tb.inboxRows, 10), strconv.FormatInt(tb.inboxBytes, 10), csvFloat(perRow(tb.inboxBytes, tb.inboxRows)),
			strconv.FormatInt(tb.auditRows, 10), strconv.FormatInt(tb.auditBytes, 10), csvFloat(perRow(tb.auditBytes, tb.auditRows)),
			strconv.FormatInt(tb.users, 10),
			strconv.Itoa(s.lat.n), csvFloat(s.lat.p50), csvFloat(s.lat.p99), csvFloat(s.lat.maxFromCommit), csvFloat(s.lat.p99Enqueued),
			strconv.Itoa(s.lat.unreceived))
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func csvFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
