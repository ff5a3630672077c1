package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/pgtest"
)

// TestNoSecretInAnyOutput runs the API, the relay and the worker as real
// processes, each logged in as its least-privilege role with a password in
// DATABASE_URL, the relay and worker with credentials in BROKER_URL, the
// worker authenticating to an SMTP server over STARTTLS, everything at debug
// level. It makes them work (two signups, each to its email, profile and
// audit row, and a profile read over request–reply), fail (their database connections killed mid-run, an SMTP
// password the server refuses, a database that does not answer, a DSN that
// does not parse), report (status, dlq list, --help) and crash (SIGQUIT
// dumps every goroutine's stack, as an unrecovered panic does). Then it
// greps everything they wrote for every secret, plain, URL-escaped and
// base64-encoded (as SMTP AUTH sends it).
func TestNoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	owner := pgtest.Connect(t, dsn)
	var outputs []*outboxdProcess
	start := func(env map[string]string, args ...string) *outboxdProcess {
		p := startOutboxd(t, env, args...)
		outputs = append(outputs, p)
		return p
	}
	run := func(env map[string]string, args ...string) (int, string) {
		p := start(env, args...)
		return p.wait(t, 60*time.Second), p.output.String()
	}

	// The secrets. The test server trusts loopback connections and ignores
	// passwords; loginAs's roles have real ones.
	ownerDSN, ownerPassword := withPassword(t, dsn, "owner-pw-"+randomHex(12))
	apiDSN, relayDSN, workerDSN := loginAs(t, dsn, apiRole), loginAs(t, dsn, relayRole), loginAs(t, dsn, workerRole)
	const smtpUser = "outboxd-mailer"
	smtpPassword := "smtp-pw-" + randomHex(12)
	wrongSMTPPassword := "smtp-wrong-pw-" + randomHex(12)
	natsPassword := "nats-pw-" + randomHex(12)
	userPassword := "user-pw-" + randomHex(12)
	secrets := []string{ownerPassword, passwordOf(t, apiDSN), passwordOf(t, relayDSN), passwordOf(t, workerDSN),
		smtpPassword, wrongSMTPPassword, natsPassword, userPassword}

	natsURL, stopNATS, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stopNATS)
	natsURL = strings.Replace(natsURL, "nats://", "nats://outboxd:"+natsPassword+"@", 1)
	smtpServer := mailtest.NewServer(t, mailtest.Options{StartTLS: true, Username: smtpUser, Password: smtpPassword})
	certFile := smtpCertificate(t, smtpServer.Addr())

	common := map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "BROKER": "nats", "BROKER_URL": natsURL}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for _, m := range []map[string]string{common, extra} {
			for k, v := range m {
				env[k] = v
			}
		}
		return env
	}
	workerEnv := func(password string) map[string]string {
		return with(map[string]string{
			"DATABASE_URL": workerDSN, "ADMIN_ADDR": freeLoopbackAddr(t),
			"SMTP_ADDR": smtpServer.Addr(), "SMTP_TLS": "starttls", "MAIL_FROM": "welcome@outboxd.test",
			"SMTP_USERNAME": smtpUser, "SMTP_PASSWORD": password, "SSL_CERT_FILE": certFile,
			"WORKER_MAX_RETRIES": "1",
		})
	}

	httpAddr := freeLoopbackAddr(t)
	apiProc := start(with(map[string]string{"DATABASE_URL": apiDSN, "HTTP_ADDR": httpAddr, "SIGNUP_RATE_LIMIT": "0",
		"ARGON2_MEMORY_KIB": "64", "ARGON2_ITERATIONS": "1"}), "api")
	relayProc := start(with(map[string]string{"DATABASE_URL": relayDSN, "ADMIN_ADDR": freeLoopbackAddr(t)}), "relay")
	workerProc := start(workerEnv(smtpPassword), "worker")

	signup := func(email string) {
		t.Helper()
		body := fmt.Sprintf(`{"email":%q,"name":"Secret Keeper","password":%q}`, email, userPassword)
		// Until the API listens, and again after its connections were killed.
		waitFor(t, 30*time.Second, func() bool {
			resp, err := http.Post("http://"+httpAddr+"/v1/signup", "application/json", strings.NewReader(body))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusCreated
		}, func() string { return "no 201 for " + email + "; api output:\n" + apiProc.output.String() })
	}
	signup("first@example.com")
	mails := smtpServer.WaitForCount(1, 30*time.Second)
	require.Len(t, mails, 1, "worker output:\n%s", workerProc.output.String())
	require.True(t, mails[0].TLS, "authenticated over STARTTLS")

	// Every connection of the three processes dies at once.
	_, err = owner.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	signup("second@example.com")
	smtpServer.WaitForCount(2, 30*time.Second)
	waitFor(t, 30*time.Second, func() bool {
		var profiles, audits int
		require.NoError(t, owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM audit_log)`).Scan(&profiles, &audits))
		return profiles == 2 && audits == 2
	}, func() string { return "profiles and audit rows missing; worker output:\n" + workerProc.output.String() })

	// The profile route: the API asks the worker's profile service, which
	// reads profiles as outboxd_worker, over NATS with credentials.
	var userID string
	require.NoError(t, owner.QueryRow(ctx, `SELECT id::text FROM users WHERE email = 'second@example.com'`).Scan(&userID))
	waitFor(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/v1/users/" + userID + "/profile")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, func() string {
		return "no profile; api output:\n" + apiProc.output.String() + "\nworker output:\n" + workerProc.output.String()
	})

	// A crash dump of the worker, then a worker whose SMTP password the
	// server refuses.
	workerProc.stop(t, syscall.SIGQUIT)
	require.Contains(t, workerProc.output.String(), "goroutine ", "SIGQUIT dumps the stacks")
	badWorker := start(workerEnv(wrongSMTPPassword), "worker", "--handlers", "email")
	signup("third@example.com")
	badWorker.waitForOutput(t, "send welcome mail", 30*time.Second)

	// Reports, help and failures at start.
	ownerEnv := map[string]string{"DATABASE_URL": ownerDSN}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"dlq", "list"}, {"migrate", "status"}} {
		code, out := run(ownerEnv, args...)
		require.Equal(t, 0, code, "%v: %s", args, out)
	}
	code, out := run(workerEnv(smtpPassword), "worker", "--help")
	require.Equal(t, 0, code, out)
	unreachable := "postgres://postgres:" + ownerPassword + "@127.0.0.1:1/outbox?sslmode=disable&connect_timeout=2"
	for _, args := range [][]string{{"api"}, {"relay"}, {"worker"}, {"status"}, {"dlq", "list"}, {"migrate", "up"}} {
		env := workerEnv(smtpPassword)
		env["DATABASE_URL"] = unreachable
		code, out := run(env, args...)
		require.Equal(t, 1, code, "%v: %s", args, out)
		require.Contains(t, out, "127.0.0.1:1/outbox", "the error names the server")
	}
	code, out = run(map[string]string{"DATABASE_URL": "postgres://postgres:" + ownerPassword + "@127.0.0.1:5432/x?sslmode=bogus"}, "status")
	require.Equal(t, 1, code, out)

	require.Equal(t, 0, apiProc.stop(t, syscall.SIGTERM), apiProc.output.String())
	relayProc.stop(t, syscall.SIGQUIT)
	badWorker.stop(t, syscall.SIGQUIT)

	var all strings.Builder
	for _, p := range outputs {
		fmt.Fprintf(&all, "$ outboxd %s\n%s\n", strings.Join(p.args, " "), p.output.String())
	}
	everything := all.String()
	// What the run must have logged for the grep to mean something.
	for _, want := range []string{"api listening", "became leader", "mail sent", "send welcome mail", "goroutine ", "127.0.0.1:1/outbox"} {
		require.Contains(t, everything, want)
	}
	for _, secret := range secrets {
		for _, form := range secretForms(smtpUser, secret) {
			if i := strings.Index(everything, form); i >= 0 {
				t.Errorf("secret %q (as %q) leaked:\n…%s…", secret, form, everything[max(i-300, 0):min(i+300, len(everything))])
			}
		}
	}
}

// secretForms are the ways a secret could show up: as is, URL-escaped, in
// base64 alone (AUTH LOGIN) and within SMTP AUTH PLAIN's credentials.
func secretForms(user, secret string) []string {
	return []string{
		secret,
		url.QueryEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + secret)),
	}
}

// withPassword returns dsn with password set (when it has none) and the
// password in it.
func withPassword(t *testing.T, dsn, password string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	if p, ok := u.User.Password(); ok {
		return dsn, p
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), password
}

func passwordOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	p, ok := u.User.Password()
	require.True(t, ok, "a password in %s", dsn)
	return p
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// smtpCertificate fetches the test SMTP server's self-signed certificate
// over STARTTLS and writes it where a child's SSL_CERT_FILE can point: the
// worker has no setting for a private CA, and needs none in production.
func smtpCertificate(t *testing.T, addr string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.StartTLS(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // only to read the certificate
	state, ok := c.TLSConnectionState()
	require.True(t, ok)
	path := filepath.Join(t.TempDir(), "smtp-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: state.PeerCertificates[0].Raw})
	require.NoError(t, os.WriteFile(path, pemBytes, 0o600))
	return path
}
