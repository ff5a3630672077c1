package bench

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is an SMTP server on a loopback port that accepts every mail,
// reads it whole, and counts it: the mail server of the worker benchmark.
type smtpSink struct {
	srv    *smtp.Server
	ln     net.Listener
	served chan struct{}
	// delay holds each mail's DATA answer, to play a slower server.
	delay time.Duration

	mu        sync.Mutex
	count     int64
	target    int64
	reachedAt time.Time // when count reached target
}

// startSMTPSink starts a sink on 127.0.0.1:0 whose DATA answers wait
// delay; close stops it.
func startSMTPSink(delay time.Duration) (*smtpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("SMTP sink: listen: %w", err)
	}
	s := &smtpSink{ln: ln, served: make(chan struct{}), delay: delay}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return sinkSession{s}, nil
	}))
	s.srv.Domain = "bench.local"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ErrorLog = discardSMTPLog{}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// addr is the sink's host:port.
func (s *smtpSink) addr() string { return s.ln.Addr().String() }

// expect starts counting again from zero, noting when n mails have come.
func (s *smtpSink) expect(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.target, s.reachedAt = 0, int64(n), time.Time{}
}

// received is the mails counted since expect, and when the expected
// number was reached (zero before).
func (s *smtpSink) received() (int64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.reachedAt
}

// add counts one mail.
func (s *smtpSink) add() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if s.count == s.target {
		s.reachedAt = time.Now()
	}
}

// close stops the server, its connections included.
func (s *smtpSink) close() {
	_ = s.srv.Close()
	_ = s.ln.Close() // in case Serve had not taken it yet
	<-s.served
}

// sinkSession accepts every sender and recipient and counts each mail
// once its data is read.
type sinkSession struct{ s *smtpSink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }

// Data reads the mail, waits the sink's delay and counts it.
func (se sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if se.s.delay > 0 {
		time.Sleep(se.s.delay)
	}
	se.s.add()
	return nil
}

// discardSMTPLog drops the server's logs (a client hanging up).
type discardSMTPLog struct{}

func (discardSMTPLog) Printf(string, ...any) {}
func (discardSMTPLog) Println(...any)        {}
