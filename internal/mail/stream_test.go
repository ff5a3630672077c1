package mail_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
)

// chunkingServer speaks SMTP by hand with PIPELINING and CHUNKING offered,
// to see what a real server hides: it answers nothing of its first session
// until it has read `hold` whole mails (RSET, MAIL FROM, RCPT TO, BDAT and its chunk
// each), so that a client waiting for a mail's replies before sending the
// next stalls until its deadline. Like Postfix, it keeps a transaction open
// after a refused recipient: a MAIL FROM without RSET before it is then
// refused as nested.
type chunkingServer struct {
	t    *testing.T
	ln   net.Listener
	hold int
	// refuse says whether to refuse the recipient of the n-th mail (from 1)
	// of every session; nil refuses none.
	refuse func(n int) bool
	// hangUpAfter, when > 0, closes the first session after answering that
	// many of its mails.
	hangUpAfter int

	mu       sync.Mutex
	sessions *atomic.Int64
	accepted []string // the Message-IDs of the mails accepted
}

func newChunkingServer(t *testing.T, hold int) *chunkingServer {
	t.Helper()
	s := &chunkingServer{t: t, hold: hold}
	s.ln, s.sessions = serveSessions(t, s.serve)
	return s
}

func (s *chunkingServer) addr() string { return s.ln.Addr().String() }

func (s *chunkingServer) serve(conn net.Conn, session int) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	_, _ = w.WriteString("220 chunking ESMTP\r\n")
	_ = w.Flush()
	var (
		replies     []string // held until hold mails are in
		held, mails int
		inMail      bool // a MAIL FROM was taken and no RSET or accepted chunk ended it
		rcpts       int
	)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		upper := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(upper, "EHLO"):
			_, _ = w.WriteString("250-chunking\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
			_ = w.Flush()
			continue
		case upper == "QUIT":
			_, _ = w.WriteString("221 bye\r\n")
			_ = w.Flush()
			return
		case upper == "RSET":
			inMail, rcpts = false, 0
			replies = append(replies, "250 reset")
		case strings.HasPrefix(upper, "MAIL FROM:"):
			if inMail {
				replies = append(replies, "503 5.5.1 nested MAIL command")
				break
			}
			inMail = true
			replies = append(replies, "250 sender ok")
		case strings.HasPrefix(upper, "RCPT TO:"):
			if s.refuse != nil && s.refuse(mails+1) {
				replies = append(replies, "550 5.1.1 no such user")
				break
			}
			rcpts++
			replies = append(replies, "250 recipient ok")
		case strings.HasPrefix(upper, "BDAT "):
			f := strings.Fields(line)
			size, err := strconv.Atoi(f[1])
			require.NoError(s.t, err)
			chunk := make([]byte, size)
			if _, err := io.ReadFull(r, chunk); err != nil {
				return
			}
			mails++
			held++
			if !inMail || rcpts == 0 {
				replies = append(replies, "554 5.5.1 no valid recipients")
				break
			}
			inMail, rcpts = false, 0
			s.mu.Lock()
			s.accepted = append(s.accepted, messageID(chunk))
			s.mu.Unlock()
			replies = append(replies, "250 2.0.0 queued")
		default:
			replies = append(replies, "500 unknown command")
		}
		if session == 1 && held < s.hold {
			continue // the client must send more before hearing anything
		}
		for _, rep := range replies {
			_, _ = w.WriteString(rep + "\r\n")
		}
		replies = replies[:0]
		_ = w.Flush()
		if session == 1 && s.hangUpAfter > 0 && mails >= s.hangUpAfter {
			return
		}
	}
}

// messageID is the Message-ID header of a raw mail.
func messageID(raw []byte) string {
	for line := range strings.SplitSeq(string(raw), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
			return v
		}
	}
	return ""
}

// sendAll sends ms at once and returns each Send's error.
func sendAll(mailer *mail.SMTPMailer, ms ...mail.Mail) []error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { errs[i] = mailer.Send(context.Background(), m) })
	}
	wg.Wait()
	return errs
}

func chunkingMailer(t *testing.T, addr string, concurrency int) *mail.SMTPMailer {
	t.Helper()
	return newMailer(t, mail.SMTPConfig{Addr: addr, TLS: mail.TLSNone, Concurrency: concurrency})
}

func TestSMTPMailerStreamsMailsWithoutWaitingForTheirReplies(t *testing.T) {
	t.Parallel()
	server := newChunkingServer(t, 3)
	mailer := chunkingMailer(t, server.addr(), 1)

	ms := []mail.Mail{testMail(1), testMail(2), testMail(3)}
	for i, err := range sendAll(mailer, ms...) {
		require.NoError(t, err, "mail %d: a client waiting for each mail's replies stalls until its deadline", i+1)
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	require.ElementsMatch(t, []string{ms[0].MessageID, ms[1].MessageID, ms[2].MessageID}, server.accepted)
	require.Equal(t, 1, int(server.sessions.Load()), "one connection carries the three mails")
}

func TestSMTPMailerStreamKeepsARefusedMailToItself(t *testing.T) {
	t.Parallel()
	server := newChunkingServer(t, 2)
	server.refuse = func(n int) bool { return n == 1 }
	mailer := chunkingMailer(t, server.addr(), 1)

	ms := []mail.Mail{testMail(1), testMail(2)}
	errs := sendAll(mailer, ms...)
	var refused, sent int
	for i, err := range errs {
		if err == nil {
			sent++
			continue
		}
		refused++
		require.ErrorIs(t, err, mail.ErrRejected)
		require.Contains(t, err.Error(), "RCPT TO: 550", "the refusal is the recipient's, not the BDAT's it causes")
		require.NotContains(t, err.Error(), ms[i].To, "the error does not hold the address")
	}
	require.Equal(t, 1, refused)
	require.Equal(t, 1, sent, "the mail behind the refused one is its own transaction (RSET first), not a nested MAIL")
	server.mu.Lock()
	defer server.mu.Unlock()
	require.Len(t, server.accepted, 1)
	require.Equal(t, 1, int(server.sessions.Load()))
}

func TestSMTPMailerStreamSendsAgainWhatADroppedConnectionLeftUnanswered(t *testing.T) {
	t.Parallel()
	server := newChunkingServer(t, 2)
	server.hangUpAfter = 2 // answers both, then hangs up: the idle connection is gone
	mailer := chunkingMailer(t, server.addr(), 1)

	first := []mail.Mail{testMail(1), testMail(2)}
	for _, err := range sendAll(mailer, first...) {
		require.NoError(t, err)
	}
	// The connection is gone now: the next mails meet it, and go again on
	// a new one, whose session answers each command as it comes.
	second := []mail.Mail{testMail(3), testMail(4)}
	for _, err := range sendAll(mailer, second...) {
		require.NoError(t, err, "a mail nothing of which was answered goes again on a new connection")
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	ids := []string{first[0].MessageID, first[1].MessageID, second[0].MessageID, second[1].MessageID}
	require.ElementsMatch(t, ids, server.accepted, "each mail once")
	require.Equal(t, 2, int(server.sessions.Load()))
}

func TestSMTPMailerSendsNothingAfterClose(t *testing.T) {
	t.Parallel()
	server := newChunkingServer(t, 1)
	mailer := chunkingMailer(t, server.addr(), 3)

	require.NoError(t, mailer.Send(context.Background(), testMail(1)))
	require.NoError(t, mailer.Close())
	require.ErrorContains(t, mailer.Send(context.Background(), testMail(2)), "closed")
	server.mu.Lock()
	defer server.mu.Unlock()
	require.Len(t, server.accepted, 1)
}
