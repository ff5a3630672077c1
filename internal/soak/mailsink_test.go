package soak_test

import (
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// mailSink is an SMTP server that keeps, of each mail, only its recipients
// and its Message-ID. mailtest keeps every mail whole and decoded, which a
// long soak's hundreds of thousands of welcome mails would turn into
// gigabytes of the test process.
type mailSink struct {
	addr string

	mu     sync.Mutex
	byAddr map[string]map[string]int // normalized address → Message-ID → count
	mails  int
}

// newMailSink starts a sink on a free loopback port and stops it when t
// ends.
func newMailSink(t *testing.T) *mailSink {
	t.Helper()
	s := &mailSink{byAddr: map[string]map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	srv.Domain = "soak.local"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discardSMTPLog{}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close()
		<-served
	})
	return s
}

// count is the number of mails accepted so far.
func (s *mailSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails
}

// addresses is the number of distinct recipients so far.
func (s *mailSink) addresses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byAddr)
}

// messageIDs returns the Message-IDs addr received, with their counts.
func (s *mailSink) messageIDs(addr string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byAddr[normalizeAddr(addr)]
}

type sinkSession struct {
	sink *mailSink
	to   []string
}

func (se *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }

func (se *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *sinkSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	if _, err := io.Copy(io.Discard, msg.Body); err != nil {
		return err
	}
	id := msg.Header.Get("Message-Id")
	s := se.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails++
	for _, to := range se.to {
		addr := normalizeAddr(to)
		if s.byAddr[addr] == nil {
			s.byAddr[addr] = map[string]int{}
		}
		s.byAddr[addr][id]++
	}
	return nil
}

func (se *sinkSession) Reset()        { se.to = nil }
func (se *sinkSession) Logout() error { return nil }

type discardSMTPLog struct{}

func (discardSMTPLog) Printf(string, ...any) {}
func (discardSMTPLog) Println(...any)        {}
