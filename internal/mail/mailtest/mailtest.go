// Package mailtest runs a real SMTP server inside a test process. It records
// every mail it accepts, decoded, and can be stopped and started again on the
// same port to play a mail server outage.
package mailtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configures a Server.
type Options struct {
	// StartTLS offers STARTTLS with a self-signed certificate; clients trust
	// it through Server.ClientTLSConfig. Defaults to false.
	StartTLS bool
	// Username and Password, when set, make the server require
	// authentication (PLAIN, over TLS only). Defaults to no authentication.
	Username, Password string
	// Reject, when set, is asked about every recipient; an error it returns
	// is the server's answer to RCPT TO. Defaults to accepting everyone.
	Reject func(to string) error
	// Delay holds each mail's DATA answer this long, to play a slow
	// server. Defaults to 0.
	Delay time.Duration
}

// Received is one mail the server accepted.
type Received struct {
	From      string
	To        []string
	Header    mail.Header
	Subject   string // decoded
	MessageID string // with angle brackets
	Text      string // the text/plain part, transfer encoding undone
	HTML      string // the text/html part, transfer encoding undone
	TLS       bool   // whether the mail came over an encrypted connection
	Raw       []byte
}

// Server is an SMTP server on a loopback port.
type Server struct {
	t    testing.TB
	opts Options
	addr string
	tls  *tls.Config
	pool *x509.CertPool

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	served   chan struct{}
	received []Received
	changed  chan struct{} // closed and replaced whenever a mail arrives
	sessions int           // connections accepted
	active   int           // mails between DATA and its answer
	peak     int           // most mails ever active at once
}

// Sessions returns how many connections the server has accepted.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// PeakConcurrency returns the most mails the server was receiving at once.
func (s *Server) PeakConcurrency() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// NewServer starts a server on a free loopback port and stops it when t ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, changed: make(chan struct{})}
	if opts.StartTLS {
		s.tls, s.pool = selfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port; it stays the same across Stop and Start.
func (s *Server) Addr() string { return s.addr }

// ClientTLSConfig trusts the server's certificate.
func (s *Server) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Stop closes the listener and every connection: clients now get
// "connection refused". Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	// Close misses a listener that Serve has not registered yet.
	_ = ln.Close()
	<-served
}

// Start listens again on the same address after Stop.
func (s *Server) Start() {
	s.t.Helper()
	var (
		ln  net.Listener
		err error
	)
	// The port was just released; another process may briefly hold it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &session{server: s, conn: c}, nil
	}))
	srv.Domain = "mailtest.local"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discardLogger{}
	srv.TLSConfig = s.tls
	served := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.served = srv, ln, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
}

// Received returns a copy of every mail accepted so far.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// WaitFor waits until cond holds for the mails received so far and returns
// them; it fails the test after timeout.
func (s *Server) WaitFor(timeout time.Duration, cond func([]Received) bool) []Received {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		s.mu.Lock()
		got, changed := append([]Received(nil), s.received...), s.changed
		s.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.t.Fatalf("mailtest: condition not met within %s; %d mails received", timeout, len(got))
			return nil
		}
	}
}

// WaitForCount waits until at least n mails arrived and returns them.
func (s *Server) WaitForCount(n int, timeout time.Duration) []Received {
	s.t.Helper()
	return s.WaitFor(timeout, func(r []Received) bool { return len(r) >= n })
}

func (s *Server) add(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, r)
	close(s.changed)
	s.changed = make(chan struct{})
}

type session struct {
	server *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (se *session) AuthMechanisms() []string {
	if se.server.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != se.server.opts.Username || password != se.server.opts.Password {
			return smtp.ErrAuthFailed
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.server.opts.Username != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if reject := se.server.opts.Reject; reject != nil {
		if err := reject(to); err != nil {
			return err
		}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.server.mu.Lock()
	se.server.active++
	se.server.peak = max(se.server.peak, se.server.active)
	se.server.mu.Unlock()
	time.Sleep(se.server.opts.Delay)
	se.server.mu.Lock()
	se.server.active--
	se.server.mu.Unlock()
	rec, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	rec.From, rec.To = se.from, append([]string(nil), se.to...)
	_, rec.TLS = se.conn.TLSConnectionState()
	se.server.add(rec)
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
