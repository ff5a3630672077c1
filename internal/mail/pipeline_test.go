package mail_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
)

// scriptedServer speaks just enough SMTP, by hand, to see how a client
// orders its commands, which a real server hides: with pipelining it
// answers MAIL FROM, RCPT TO and DATA only once it has read all three, so
// that a client waiting for each reply stalls until the read deadline; without,
// it answers each command alone and checks that the next one did not come
// before its answer.
type scriptedServer struct {
	t          *testing.T
	ln         net.Listener
	pipelining bool
	// onMail answers the MAIL FROM of the n-th transaction of a session
	// (from 1) instead of the script; "" keeps the script.
	onMail func(session, n int) string

	mu       sync.Mutex
	sessions *atomic.Int64
	commands []string // every command of every session, in order
	mails    int      // transactions that ended with 250 after the data
	problems []string // orderings the script saw and did not expect
}

func newScriptedServer(t *testing.T, pipelining bool) *scriptedServer {
	t.Helper()
	s := &scriptedServer{t: t, pipelining: pipelining}
	s.ln, s.sessions = serveSessions(t, s.serve)
	return s
}

// serveSessions serves each connection to a loopback port with serve, each
// in a goroutine of its own and numbered from 1, until the test ends; it
// counts them.
func serveSessions(t *testing.T, serve func(conn net.Conn, session int)) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg       sync.WaitGroup
		sessions atomic.Int64
	)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			session := int(sessions.Add(1))
			wg.Go(func() { serve(conn, session) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln, &sessions
}

func (s *scriptedServer) addr() string { return s.ln.Addr().String() }

func (s *scriptedServer) problem(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, p)
}

func (s *scriptedServer) serve(conn net.Conn, session int) {
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	reply := func(lines ...string) {
		for _, l := range lines {
			_, _ = w.WriteString(l + "\r\n")
		}
		_ = w.Flush()
	}
	read := func() (string, error) {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if err == nil {
			s.mu.Lock()
			s.commands = append(s.commands, line)
			s.mu.Unlock()
		}
		return line, err
	}
	// arrivedEarly reports whether the client sent more before the
	// answer it should be waiting for.
	arrivedEarly := func() bool {
		if r.Buffered() > 0 {
			return true
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := r.Peek(1)
		return err == nil
	}
	reply("220 scripted ESMTP")
	transactions := 0
	for {
		line, err := read()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch {
		case verb == "EHLO":
			if s.pipelining {
				reply("250-scripted", "250-PIPELINING", "250 8BITMIME")
			} else {
				reply("250-scripted", "250 8BITMIME")
			}
		case strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:"):
			transactions++
			if s.onMail != nil {
				if answer := s.onMail(session, transactions); answer != "" {
					reply(answer)
					return
				}
			}
			if !s.pipelining {
				if arrivedEarly() {
					s.problem("RCPT TO came before the answer to MAIL FROM, without PIPELINING")
				}
				reply("250 sender ok")
				continue
			}
			rcpt, err1 := read()
			data, err2 := read()
			if err1 != nil || err2 != nil {
				s.problem("the client waited for the answer to MAIL FROM although the server offers PIPELINING")
				return
			}
			answers := []string{"250 sender ok", "250 recipient ok", "354 go on"}
			if strings.Contains(rcpt, "refused@") {
				answers = []string{"250 sender ok", "550 no such user", "554 no valid recipients"}
			}
			reply(answers...)
			if !strings.EqualFold(data, "DATA") || strings.HasPrefix(answers[2], "5") {
				continue
			}
			if !s.readData(read, reply) {
				return
			}
		case verb == "RCPT":
			reply("250 recipient ok")
		case verb == "DATA":
			reply("354 go on")
			if !s.readData(read, reply) {
				return
			}
		case verb == "RSET" || verb == "NOOP":
			reply("250 ok")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown command")
		}
	}
}

// readData reads a mail's content up to its end and accepts it.
func (s *scriptedServer) readData(read func() (string, error), reply func(...string)) bool {
	for {
		line, err := read()
		if err != nil {
			return false
		}
		if line == "." {
			s.mu.Lock()
			s.mails++
			s.mu.Unlock()
			reply("250 queued")
			return true
		}
	}
}

// seen are the commands of every session so far, without the mails'
// content, the session count and the mails accepted.
func (s *scriptedServer) seen() (commands []string, sessions, mails int, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.commands {
		v := strings.ToUpper(strings.Fields(c + " x")[0])
		switch v {
		case "MAIL", "RCPT":
			commands = append(commands, strings.ToUpper(strings.SplitN(c, ":", 2)[0]))
		case ".", "EHLO", "DATA", "RSET", "NOOP", "QUIT":
			commands = append(commands, v)
		}
	}
	return commands, int(s.sessions.Load()), s.mails, s.problems
}

func TestSMTPMailerPipelinesWhenTheServerOffersIt(t *testing.T) {
	t.Parallel()
	server := newScriptedServer(t, true)
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.addr(), TLS: mail.TLSNone})
	t.Cleanup(func() { _ = mailer.Close() })

	for i := range 3 {
		require.NoError(t, mailer.Send(context.Background(), testMail(i)))
	}
	commands, sessions, mails, problems := server.seen()
	require.Empty(t, problems)
	require.Equal(t, 3, mails)
	require.Equal(t, 1, sessions, "one connection carries the mails")
	require.Equal(t, []string{"EHLO",
		"MAIL FROM", "RCPT TO", "DATA", ".",
		"MAIL FROM", "RCPT TO", "DATA", ".",
		"MAIL FROM", "RCPT TO", "DATA", ".",
	}, commands, "two round trips a mail and no RSET: the end of data ends the transaction")

	server.mu.Lock()
	defer server.mu.Unlock()
	require.Contains(t, server.commands, "MAIL FROM:<noreply@outboxd.test> BODY=8BITMIME", "the parameters of the extensions offered")
}

func TestSMTPMailerWaitsForEachAnswerWithoutPipelining(t *testing.T) {
	t.Parallel()
	server := newScriptedServer(t, false)
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.addr(), TLS: mail.TLSNone})
	t.Cleanup(func() { _ = mailer.Close() })

	for i := range 2 {
		require.NoError(t, mailer.Send(context.Background(), testMail(i)))
	}
	_, sessions, mails, problems := server.seen()
	require.Empty(t, problems, "a server that does not offer PIPELINING gets one command at a time")
	require.Equal(t, 2, mails)
	require.Equal(t, 1, sessions)
}

func TestSMTPMailerPipelinedRefusalIsRejected(t *testing.T) {
	t.Parallel()
	server := newScriptedServer(t, true)
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.addr(), TLS: mail.TLSNone})
	t.Cleanup(func() { _ = mailer.Close() })

	err := mailer.Send(context.Background(), mail.Mail{To: "refused@example.com", Subject: "s", Text: "t"})
	require.ErrorIs(t, err, mail.ErrRejected, "a 550 to RCPT TO is permanent")
	require.ErrorContains(t, err, "RCPT TO: 550", "the refused command is named, not the DATA refusal it causes")
	require.NotContains(t, err.Error(), "refused@example.com", "the address is the user's")

	require.NoError(t, mailer.Send(context.Background(), testMail(1)))
	_, sessions, mails, _ := server.seen()
	require.Equal(t, 1, mails)
	require.Equal(t, 2, sessions, "the connection of a failed send is not reused")
}

func TestSMTPMailerPipelinedSendRedialsAConnectionTheServerIsClosing(t *testing.T) {
	t.Parallel()
	server := newScriptedServer(t, true)
	// The first session's second transaction is refused with 421, the
	// answer of a server closing an idle connection.
	server.onMail = func(session, n int) string {
		if session == 1 && n == 2 {
			return "421 idle too long, closing"
		}
		return ""
	}
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.addr(), TLS: mail.TLSNone})
	t.Cleanup(func() { _ = mailer.Close() })

	require.NoError(t, mailer.Send(context.Background(), testMail(1)))
	require.NoError(t, mailer.Send(context.Background(), testMail(2)), "nothing was accepted: the mail goes again on a new connection")
	_, sessions, mails, problems := server.seen()
	require.Empty(t, problems)
	require.Equal(t, 2, mails)
	require.Equal(t, 2, sessions)
}

func TestSMTPMailerPipelinedSendFailsOnATimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts the connection and greets, then never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("220 x ESMTP\r\n"))
		r := bufio.NewReader(conn)
		if line, _ := r.ReadString('\n'); strings.HasPrefix(line, "EHLO") {
			_, _ = conn.Write([]byte("250-x\r\n250 PIPELINING\r\n"))
		}
		_, _ = r.ReadString(0) // until the client hangs up
	}()
	cfg := mail.SMTPConfig{Addr: ln.Addr().String(), TLS: mail.TLSNone, From: from, Timeout: 300 * time.Millisecond}
	mailer, err := mail.NewSMTP(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mailer.Close() })
	err = mailer.Send(context.Background(), testMail(1))
	require.Error(t, err)
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the per-command timeout bounds the pipelined send too: %v", err)
}
