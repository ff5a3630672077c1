package soak_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
)

// Soak shape: modest, because CI runs it beside every other package's tests
// under the race detector on two cores.
const (
	soakRate     = 15               // signups per second
	soakLoad     = 48 * time.Second // how long signups are sent
	brokerDown   = 5 * time.Second  // NATS outage
	postgresDown = 3 * time.Second  // PostgreSQL outage during its restart
	// pgGrace is how long after PostgreSQL accepts connections again a
	// failed signup still counts as caused by the outage: the API's pool
	// finds its dead connections on use.
	pgGrace = 3 * time.Second
	// drainTimeout bounds the wait for every consequence after the load.
	// A worker killed with a message in hand gets it back after the
	// broker's 30 s ack timeout.
	drainTimeout = 100 * time.Second
)

// soakMode is how the relays capture the outbox, and what the API does to
// suit it.
type soakMode struct {
	name     string
	relayEnv []string
	apiEnv   []string
}

// soakModes are the two capture modes: poll claims rows under the
// transaction horizon, woken by the API's NOTIFY; wal streams a logical
// replication slot, so the API notifies nobody.
var soakModes = []soakMode{
	{name: "poll", relayEnv: []string{"RELAY_CAPTURE=poll"}, apiEnv: []string{"OUTBOX_NOTIFY=on"}},
	{name: "wal", relayEnv: []string{"RELAY_CAPTURE=wal"}, apiEnv: []string{"OUTBOX_NOTIFY=off"}},
}

// TestSoakUnderFaults runs the soak once per capture mode, each on a cluster
// of its own: it signs users up at a steady rate while relays (three
// replicas) and the worker are killed with SIGKILL and restarted, NATS is
// stopped for 5 s and PostgreSQL is restarted, then reconciles: every user
// has exactly one profile and one audit record and at least one welcome
// mail, all with the Message-ID of its one user.created message; no outbox
// row is left; no signup failed except while PostgreSQL was down, and those
// were 503 with Retry-After. In wal mode every leader kill is a takeover of
// the replication slot, and the slot outlives the kills and the restart.
//
// The modes run one after the other, not in parallel: on two cores two
// soaks would slow each other's processes enough to blur the outage
// windows the reconciliation relies on.
func TestSoakUnderFaults(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the soak takes over two minutes")
	}
	for _, mode := range soakModes {
		t.Run(mode.name, func(t *testing.T) { soak(t, mode) })
	}
}

// soak is the soak body in one capture mode.
func soak(t *testing.T, mode soakMode) {
	pg := newCluster(t, walSettings...)
	dsn, pool := pg.createPool(t, "outboxd_soak")

	natsDir := t.TempDir()
	natsURL, stopNATS, err := broker.StartEmbeddedNATS(context.Background(), natsDir)
	require.NoError(t, err)
	t.Cleanup(func() { stopNATS() })
	u, err := url.Parse(natsURL)
	require.NoError(t, err)
	natsPort, err := strconv.Atoi(u.Port())
	require.NoError(t, err)

	smtp := mailtest.NewServer(t, mailtest.Options{})

	common := []string{"DATABASE_URL=" + dsn, "BROKER=nats", "BROKER_URL=" + natsURL, "LOG_FORMAT=text"}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	api := startProcess(t, "api", append(append(common, mode.apiEnv...),
		"HTTP_ADDR="+httpAddr, "SIGNUP_RATE_LIMIT=0", "LOG_LEVEL=warn",
		"ARGON2_MEMORY_KIB=64", "ARGON2_ITERATIONS=1", "ARGON2_PARALLELISM=1"), "api")
	var relays []*process
	for i := range 3 {
		relays = append(relays, startProcess(t, fmt.Sprintf("relay-%d", i),
			append(append(common, mode.relayEnv...), "ADMIN_ADDR=127.0.0.1:0"), "relay"))
	}
	worker := startProcess(t, "worker", append(common, "ADMIN_ADDR=127.0.0.1:0",
		"SMTP_ADDR="+smtp.Addr(), "MAIL_FROM=outboxd <noreply@outboxd.test>", "SMTP_TLS=none"), "worker")
	waitHTTP(t, "http://"+httpAddr+"/healthz", 60*time.Second)

	// Signups run while the faults happen on a fixed schedule.
	ld := newLoad("http://" + httpAddr)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(loadDone)
		ld.run(loadCtx, soakRate)
	}()
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

	leaderKills := 0
	killLeader := func() {
		leader(t, pool, relays).restart(t)
		leaderKills++
	}
	at(4 * time.Second)
	killLeader()
	at(8 * time.Second)
	worker.restart(t)
	at(12 * time.Second)
	stopNATS()
	at(12*time.Second + brokerDown)
	_, stopNATS, err = broker.StartEmbeddedNATSOn(context.Background(), natsDir, natsPort)
	require.NoError(t, err, "restart NATS on its port")
	at(22 * time.Second)
	killLeader()
	at(26 * time.Second)
	pgDown := window{from: time.Now()}
	pg.stop(t)
	time.Sleep(postgresDown)
	pg.start(t)
	pgDown.to = time.Now().Add(pgGrace)
	at(34 * time.Second)
	worker.restart(t)
	relays[2].restart(t)
	at(40 * time.Second)
	killLeader()
	at(soakLoad)
	stopLoad()
	<-loadDone
	t.Logf("load done after %s; PostgreSQL down %s to %s (grace included)",
		time.Since(start).Round(time.Millisecond), pgDown.from.Sub(start).Round(time.Millisecond), pgDown.to.Sub(start).Round(time.Millisecond))

	attempts := ld.results()
	checkSignups(t, attempts, pgDown)
	created := map[string]uuid.UUID{} // email → user id
	for _, a := range attempts {
		if a.status == http.StatusCreated {
			created[a.email] = a.userID
		}
	}

	// Every consequence arrives once the processes have caught up.
	waitReconciled(t, pool, smtp, drainTimeout)
	for _, p := range append([]*process{api, worker}, relays...) {
		dead, err := p.exited()
		require.False(t, dead, "%s exited by itself: %v", p.name, err)
	}
	reconcile(t, pool, smtp, attempts, created)
	// A new leader streams after every leader kill and after the
	// PostgreSQL restart.
	checkCapture(t, pool, mode, relays, leaderKills+1)
}

// checkCapture requires the relays to have captured as mode says. In wal
// mode: one slot, taken over by a new leader at least takeovers times (after
// leader kills, a PostgreSQL restart), and never lost, so that the relays
// resynced from the table only when the first leader created it. In poll
// mode: no slot, no stream.
func checkCapture(t *testing.T, pool *pgxpool.Pool, mode soakMode, relays []*process, takeovers int) {
	t.Helper()
	var slots int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&slots))
	var streams, resyncs int
	for _, r := range relays {
		logs := r.logs.String()
		streams += strings.Count(logs, "relay: streaming the WAL")
		resyncs += strings.Count(logs, "new replication slot")
	}
	t.Logf("%s: %d replication slots, %d stream starts, %d resyncs, %d takeovers expected", mode.name, slots, streams, resyncs, takeovers)
	if mode.name == "poll" {
		require.Zero(t, slots, "poll: no replication slot")
		require.Zero(t, streams, "poll: no relay streamed the WAL")
		return
	}
	require.Equal(t, 1, slots, "wal: the relays share one replication slot")
	// The first leader, then one stream per takeover.
	require.GreaterOrEqual(t, streams, 1+takeovers, "wal: a new leader streams after every takeover")
	require.Equal(t, 1, resyncs, "wal: only the first leader, creating the slot, published from the table; takeovers and the restart resumed the slot")
}

// leader returns the relay process that holds the leader lock, as the
// relay_leader table names it ("host-pid"), so that the kill forces a
// takeover; relays[0] when no live leader is known.
func leader(t *testing.T, pool *pgxpool.Pool, relays []*process) *process {
	t.Helper()
	r, err := liveLeader(pool, relays)
	if r != nil {
		t.Logf("killing the leader, %s (pid %d)", r.name, r.pid())
		return r
	}
	t.Logf("no live leader known (%v); killing %s", err, relays[0].name)
	return relays[0]
}

// liveLeader returns the relay process that relay_leader names as the
// leader ("host-pid", heartbeat within 10 s), or nil when it names none of
// the current runs of relays (a leader just killed, say).
func liveLeader(pool *pgxpool.Pool, relays []*process) (*process, error) {
	var name string
	err := pool.QueryRow(context.Background(),
		`SELECT name FROM relay_leader WHERE heartbeat_at > now() - interval '10 seconds'`).Scan(&name)
	if err != nil {
		return nil, err
	}
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		if pid, err := strconv.Atoi(name[i+1:]); err == nil {
			for _, r := range relays {
				if r.pid() == pid {
					return r, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("relay_leader names %q, no running relay", name)
}

// checkSignups requires every signup to have succeeded but those that
// overlapped the PostgreSQL outage, which must be 503 with Retry-After.
func checkSignups(t *testing.T, attempts []attempt, pgDown window) {
	t.Helper()
	byStatus := map[int]int{}
	for _, a := range attempts {
		byStatus[a.status]++
		require.NoError(t, a.err, "signup %s: no transport error is acceptable (the API never goes down)", a.email)
		if a.status == http.StatusCreated {
			continue
		}
		require.True(t, pgDown.overlaps(a), "signup %s failed with %d outside the PostgreSQL outage (sent %s)",
			a.email, a.status, a.start.Format(time.TimeOnly+".000"))
		require.Equal(t, http.StatusServiceUnavailable, a.status, "signup %s during the PostgreSQL outage", a.email)
		require.NotEmpty(t, a.retryAfter, "signup %s: a 503 carries Retry-After", a.email)
	}
	t.Logf("signups by status: %v", byStatus)
	require.Greater(t, byStatus[http.StatusCreated], soakRate*int(soakLoad/time.Second)/2, "most signups succeed")
	require.Positive(t, byStatus[http.StatusServiceUnavailable], "the PostgreSQL outage was felt: the soak exercised it")
}

// waitReconciled waits until the outbox is empty and every user has its
// profile, audit record and mail, logging the counts on the way.
func waitReconciled(t *testing.T, pool *pgxpool.Pool, smtp *mailtest.Server, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	var status string
	for {
		var users, outbox, profiles, audits int
		err := pool.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM outbox),
	(SELECT count(*) FROM profiles), (SELECT count(DISTINCT subject) FROM audit_log)`).
			Scan(&users, &outbox, &profiles, &audits)
		require.NoError(t, err)
		mailed := map[string]bool{}
		for _, m := range smtp.Received() {
			for _, to := range m.To {
				mailed[normalizeAddr(to)] = true
			}
		}
		status = fmt.Sprintf("users=%d outbox=%d profiles=%d audited=%d mailed=%d", users, outbox, profiles, audits, len(mailed))
		if outbox == 0 && profiles == users && audits == users && len(mailed) >= users {
			t.Logf("reconciled %s after the load: %s", time.Since(began).Round(time.Millisecond), status)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reconciled within %s: %s", timeout, status)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reconcile checks each user against its consequences.
func reconcile(t *testing.T, pool *pgxpool.Pool, smtp *mailtest.Server, attempts []attempt, created map[string]uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	status := map[string]int{}
	for _, a := range attempts {
		status[a.email] = a.status
	}

	rows, err := pool.Query(ctx, `
SELECT u.id, u.email,
	(SELECT count(*) FROM profiles p WHERE p.user_id = u.id),
	(SELECT count(*) FROM audit_log a WHERE a.subject = u.id::text AND a.event = 'user.created'),
	(SELECT array_agg(a.message_id) FROM audit_log a WHERE a.subject = u.id::text)
FROM users u`)
	require.NoError(t, err)
	type user struct {
		id              uuid.UUID
		email           string
		profiles, audit int
		messageIDs      []uuid.UUID
	}
	var users []user
	for rows.Next() {
		var u user
		require.NoError(t, rows.Scan(&u.id, &u.email, &u.profiles, &u.audit, &u.messageIDs))
		users = append(users, u)
	}
	require.NoError(t, rows.Err())

	mails := map[string]map[string]int{} // address → Message-ID → count
	for _, m := range smtp.Received() {
		for _, to := range m.To {
			addr := normalizeAddr(to)
			if mails[addr] == nil {
				mails[addr] = map[string]int{}
			}
			mails[addr][m.MessageID]++
		}
	}

	seen := map[uuid.UUID]bool{}
	repeats := 0
	for _, u := range users {
		seen[u.id] = true
		st, ok := status[u.email]
		require.True(t, ok, "user %s was never signed up by the soak", u.id)
		if st != http.StatusCreated {
			// The commit went through but its answer was lost to the outage.
			require.Equal(t, http.StatusServiceUnavailable, st, "user %s exists after a %d", u.id, st)
			t.Logf("user %s committed although its signup got 503 (commit outcome lost in the outage)", u.id)
		}
		require.Equal(t, 1, u.profiles, "user %s: exactly one profile", u.id)
		require.Equal(t, 1, u.audit, "user %s: exactly one audit record", u.id)
		require.Len(t, u.messageIDs, 1, "user %s: one user.created message", u.id)
		got := mails[normalizeAddr(u.email)]
		require.Len(t, got, 1, "user %s: welcome mails carry exactly one Message-ID, got %v", u.id, got)
		want := mail.MessageID(u.messageIDs[0])
		require.Contains(t, got, want, "user %s: the mail's Message-ID comes from its message id", u.id)
		repeats += got[want] - 1
	}
	for email, id := range created {
		require.True(t, seen[id], "the 201 for %s (user %s) has no user", email, id)
	}

	var deadLetters, relayDeadLetters int
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM outbox_dead_letters)`).
		Scan(&deadLetters, &relayDeadLetters))
	require.Zero(t, deadLetters, "no handler dead letters")
	require.Zero(t, relayDeadLetters, "no relay dead letters")
	t.Logf("reconciled %d users (%d answered 201); %d welcome mails sent more than once", len(users), len(created), repeats)
}

// normalizeAddr is an address as the mail server and the users table can
// both spell it.
func normalizeAddr(s string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(s), "<>"))
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
