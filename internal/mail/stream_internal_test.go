package mail

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// scriptedConn is a connection to a server that has already spoken: each
// read returns the next of its replies once the test releases it, and
// writes fail once the test says so, as when the server hung up after
// answering, or once past their deadline. Reads ignore deadlines: the test
// releases each.
type scriptedConn struct {
	replies  chan string // the server's replies, one read each
	readAt   chan struct{}
	mu       sync.Mutex
	failing  bool
	closed   bool
	closedCh chan struct{}
	deadline time.Time // writes past it fail, as a socket's do
}

func newScriptedConn() *scriptedConn {
	return &scriptedConn{replies: make(chan string, 16), readAt: make(chan struct{}, 16), closedCh: make(chan struct{})}
}

func (c *scriptedConn) Read(p []byte) (int, error) {
	c.readAt <- struct{}{}
	select {
	case r, ok := <-c.replies:
		if !ok {
			return 0, io.EOF
		}
		return copy(p, r), nil
	case <-c.closedCh:
		return 0, net.ErrClosed
	}
}

func (c *scriptedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing || c.closed {
		return 0, syscall.EPIPE
	}
	if !c.deadline.IsZero() && time.Now().After(c.deadline) {
		return 0, os.ErrDeadlineExceeded
	}
	return len(p), nil
}

func (c *scriptedConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.closedCh)
	}
	return nil
}

func (c *scriptedConn) failWrites() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = true
}

func (*scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (*scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (*scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (*scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the deadline of writes; reads wait for the test.
func (c *scriptedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// scriptedStream is a stream over a scriptedConn that has greeted and
// answered EHLO with PIPELINING and CHUNKING, and the outcomes its mails
// are finished with.
func scriptedStream(t *testing.T) (*stream, *scriptedConn, chan error) {
	t.Helper()
	conn := newScriptedConn()
	conn.replies <- "220 scripted ESMTP\r\n"
	conn.replies <- "250-scripted\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
	c, err := gosmtp.NewClient(conn, "localhost")
	require.NoError(t, err)
	require.NoError(t, c.Hello("localhost"))
	require.True(t, streaming(c))
	for len(conn.readAt) > 0 {
		<-conn.readAt // the greeting's and EHLO's
	}
	outcomes := make(chan error, 4)
	st := newStream(c, time.Second, func(_ *job, err error) { outcomes <- err })
	t.Cleanup(func() {
		_ = conn.Close()
		close(st.pending) // the reader ends, as when the lane retires it
		st.read.Wait()
	})
	return st, conn, outcomes
}

func scriptedJob() *job {
	return &job{ctx: context.Background(), out: outgoing{
		from: "<from@example.com>", rcpts: []string{"<to@example.com>"},
		content: []byte("Subject: hi\r\n\r\nhello\r\n"),
	}}
}

// waitRead waits for the stream's reader to block on a read.
func (c *scriptedConn) waitRead(t *testing.T) {
	t.Helper()
	select {
	case <-c.readAt:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader never read")
	}
}

// A server that answers a mail and hangs up makes the next write fail; the
// reply it sent first still reaches the mail, which must not go again (it
// was accepted: sending it again sends it twice).
func TestStreamReadsTheRepliesSentBeforeAWriteFailed(t *testing.T) {
	t.Parallel()
	st, conn, outcomes := scriptedStream(t)
	require.True(t, st.write(scriptedJob()))
	conn.waitRead(t) // the reader waits for the mail's first reply

	conn.failWrites()
	st.flush()
	conn.replies <- "250 reset\r\n250 sender ok\r\n250 recipient ok\r\n250 queued\r\n"
	select {
	case err := <-outcomes:
		require.NoError(t, err, "the mail was answered before the connection failed")
	case <-time.After(5 * time.Second):
		t.Fatal("the mail got no outcome")
	}
	require.False(t, st.writable())
}

// A connection that can no longer be written does not take a mail: the
// lane sends it on a new connection, rather than failing it there as gone
// with the error of the mail before it (which used the retries of a mail
// up on one dead connection, seen in CI as "RSET: EOF").
func TestStreamBrokenDoesNotTakeAMail(t *testing.T) {
	t.Parallel()
	st, conn, outcomes := scriptedStream(t)
	require.True(t, st.write(scriptedJob()))
	conn.waitRead(t)
	close(conn.replies) // the server hung up without a word
	select {
	case err := <-outcomes:
		require.ErrorIs(t, err, errConnectionGone)
	case <-time.After(5 * time.Second):
		t.Fatal("the mail got no outcome")
	}
	require.False(t, st.writable())
	require.False(t, st.write(scriptedJob()), "a broken connection takes no mail")
	select {
	case err := <-outcomes:
		t.Fatalf("a mail not taken was finished: %v", err)
	default:
	}
}

// A recipient refused for good stays the mail's outcome when the server
// then hangs up (421) on its BDAT: the refusal is permanent, the hang-up
// is not.
func TestStreamKeepsARefusalWhenTheServerHangsUpAfter(t *testing.T) {
	t.Parallel()
	st, conn, outcomes := scriptedStream(t)
	require.True(t, st.write(scriptedJob()))
	st.flush()
	conn.replies <- "250 reset\r\n250 sender ok\r\n550 5.1.1 no such user\r\n421 4.3.2 closing\r\n"
	var err error
	select {
	case err = <-outcomes:
	case <-time.After(5 * time.Second):
		t.Fatal("the mail got no outcome")
	}
	require.ErrorContains(t, err, "RCPT TO: 550")
	require.False(t, errors.Is(err, errConnectionGone))
}

// A mail bigger than the connection's buffer flushes part of itself while
// it is written, before flush: after the connection sat idle past its
// deadline, that write must not fail on the old deadline.
func TestStreamWritesABigMailAfterAnIdleSpell(t *testing.T) {
	t.Parallel()
	st, conn, outcomes := scriptedStream(t)
	require.NoError(t, st.conn.UpdateDeadline(-time.Second)) // idle past the last command's deadline
	j := scriptedJob()
	j.out.content = []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 100)) // 7.8 kB
	require.True(t, st.write(j))
	st.flush()
	require.True(t, st.writable(), "the mail was written whole")
	conn.replies <- "250 reset\r\n250 sender ok\r\n250 recipient ok\r\n250 queued\r\n"
	select {
	case err := <-outcomes:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the mail got no outcome")
	}
}
