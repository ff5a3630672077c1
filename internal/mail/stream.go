package mail

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/wneessen/go-mail/smtp"
)

// streamWindow is how many mails one connection carries unanswered at once
// to a server that offers PIPELINING and CHUNKING: with the defaults, four
// connections carry the worker's sixteen sends at once.
const streamWindow = 8

// streaming reports whether the server of conn takes whole mails in a
// pipeline: commands in groups (PIPELINING, RFC 2920) and the content as a
// sized chunk (CHUNKING, RFC 3030), which, unlike DATA, needs no reply
// before it is sent.
func streaming(conn *gosmtp.Client) bool {
	chunking, _ := conn.Extension("CHUNKING")
	return chunking && pipelining(conn)
}

// stream carries mails on one connection to a server that offers
// PIPELINING and CHUNKING without waiting for their replies: each mail is
// RSET, MAIL FROM, RCPT TO and BDAT with its content, written behind the
// mails before it, while a reader takes the replies in the same order. A
// mail therefore costs no round trip of its own, up to streamWindow of them
// unanswered. The RSET first makes every mail's transaction its own: it
// clears what a refused mail before it may have left (a MAIL FROM without
// recipients) before its reply is known.
type stream struct {
	conn    *gosmtp.Client
	params  string // MAIL FROM parameters, for the server's extensions
	timeout time.Duration
	finish  func(*job, error)
	pending chan *job // mails written, in order, for the reader
	read    sync.WaitGroup

	mu sync.Mutex
	// broken is why the connection was closed: nothing more is read or
	// written. nil while it works.
	broken error
	// unwritable is why a write failed: nothing more is written, but the
	// replies of the mails written are still read, for a server that
	// answered them before it hung up.
	unwritable error
}

// newStream starts the reader of conn's replies, which hands each mail its
// outcome through finish.
func newStream(conn *gosmtp.Client, timeout time.Duration, finish func(*job, error)) *stream {
	st := &stream{
		conn: conn, params: mailParams(conn), timeout: timeout, finish: finish,
		pending: make(chan *job, streamWindow),
	}
	st.read.Go(st.readReplies)
	return st
}

// write puts j's commands and content in the connection's buffer, and
// hands j to the reader; the caller flushes. A mail that cannot be written
// fails alone, the connection untouched. write does not take j (taken ==
// false, j not finished) when nothing can be written on the connection any
// more: the caller sends it on a new one, which costs it no attempt.
func (st *stream) write(j *job) (taken bool) {
	if !st.writable() {
		return false
	}
	err := j.ctx.Err() // its Send returned already
	if err == nil {
		err = checkEnvelope(j.out)
	}
	if err != nil {
		st.finish(j, err)
		return true
	}
	// The buffer flushes itself when it fills, before flush: with the
	// deadline of the last command, long past on an idle connection.
	if err := st.conn.UpdateDeadline(st.timeout); err != nil {
		st.stopWriting(err)
		return false
	}
	content := withCRLF(j.out.content)
	w := st.conn.Text.W
	_, _ = w.WriteString("RSET\r\nMAIL FROM:" + j.out.from + st.params + "\r\n") // a bufio.Writer keeps its error for Flush
	for _, r := range j.out.rcpts {
		_, _ = w.WriteString("RCPT TO:" + r + "\r\n")
	}
	_, _ = w.WriteString("BDAT " + strconv.Itoa(len(content)) + " LAST\r\n")
	_, _ = w.Write(content)
	st.pending <- j // never blocks: a lane holds at most streamWindow jobs
	return true
}

// flush sends what write buffered. After a failure nothing more is written
// on the connection; the reader still reads the replies the server sent
// (one that hung up may have answered some mails first) until a read
// fails, and the mails it gets no reply for go again as gone.
func (st *stream) flush() {
	err := st.conn.UpdateDeadline(st.timeout)
	if err == nil {
		err = st.conn.Text.W.Flush()
	}
	if err != nil {
		st.stopWriting(err)
	}
}

// readReplies reads each pending mail's replies, in the order the mails
// were written, and hands each its outcome, until the connection is
// retired. Once the connection broke, the mails after are failed without
// reading, as gone: nothing of them was answered.
func (st *stream) readReplies() {
	for j := range st.pending {
		err := gone(st.failed())
		if err == nil {
			var lost error
			err, lost = st.replies(j)
			if lost != nil {
				st.breakWith(lost)
			}
		}
		st.finish(j, err)
	}
}

// gone marks err, a broken connection, as one that took nothing of the
// mail it fails, so that the mail goes again on a new connection.
func gone(err error) error {
	if err == nil || errors.Is(err, errConnectionGone) {
		return err
	}
	return fmt.Errorf("%w: %w", errConnectionGone, err)
}

// replies reads the replies of j's commands. It returns the mail's outcome,
// the first refusal of its transaction, which a refused recipient makes
// that and not the BDAT refusal it causes; and, when the connection failed
// or the server is closing it (421), why, which fails the mail too.
func (st *stream) replies(j *job) (outcome, gone error) {
	cmds := 3 + len(j.out.rcpts) // RSET, MAIL FROM, RCPT TO each, BDAT
	for i := range cmds {
		name, expect := "RSET", 250
		switch {
		case i == 1:
			name = "MAIL FROM"
		case i == cmds-1:
			name = "BDAT"
		case i > 1:
			name, expect = "RCPT TO", 25 // 250 or 251
		}
		if err := st.conn.UpdateDeadline(st.timeout); err != nil {
			err = fmt.Errorf("%w: %w", errConnectionGone, err)
			return err, err
		}
		_, _, err := st.conn.Text.ReadResponse(expect)
		var reply *textproto.Error
		switch {
		case err == nil:
		case errors.As(err, &reply) && reply.Code != 421:
			if outcome == nil {
				outcome = fmt.Errorf("%s: %w", name, err)
			}
		case i == 0:
			// Nothing of this mail was answered: it may go again.
			err = fmt.Errorf("%w: %s: %w", errConnectionGone, name, err)
			return err, err
		default:
			err = fmt.Errorf("%s: %w", name, err)
			// A refusal read before stays the mail's outcome: a server
			// that refused it for good does not take it later.
			return cmp.Or(outcome, err), err
		}
	}
	return outcome, nil
}

// failed is why the connection broke, or nil.
func (st *stream) failed() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.broken
}

// writable reports whether mails may still be written on the connection.
func (st *stream) writable() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.broken == nil && st.unwritable == nil
}

// stopWriting ends the writes on the connection for err, once; the reader
// goes on.
func (st *stream) stopWriting(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.unwritable == nil {
		st.unwritable = err
	}
}

// breakWith marks the connection unusable for err, once, and closes it, so
// that a reader waiting for a reply stops at once.
func (st *stream) breakWith(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.broken == nil {
		st.broken = err
		_ = st.conn.Close()
	}
}

// retire waits for the replies of the mails written, then ends the
// connection: QUIT on a working one.
func (st *stream) retire(quit func(*gosmtp.Client) error) {
	close(st.pending)
	st.read.Wait()
	if st.failed() != nil {
		return // closed already
	}
	if st.writable() {
		if err := st.conn.UpdateDeadline(st.timeout); err == nil {
			_ = quit(st.conn)
		}
	}
	_ = st.conn.Close()
}

// checkEnvelope refuses addresses that would end a command line early,
// without naming them: they are the users'.
func checkEnvelope(out outgoing) error {
	for _, a := range append([]string{out.from}, out.rcpts...) {
		if strings.ContainsAny(a, "\r\n") {
			return errors.New("SMTP envelope: an address holds a line break")
		}
	}
	return nil
}

// withCRLF returns content with every line ended by CRLF, the last one
// included, as a BDAT chunk carries it: unlike DATA's dot-writer, nothing
// converts it on the way.
func withCRLF(content []byte) []byte {
	bare := bytes.Count(content, []byte("\n")) - bytes.Count(content, []byte("\r\n"))
	ends := bytes.HasSuffix(content, []byte("\r\n"))
	if bare == 0 && ends {
		return content
	}
	out := make([]byte, 0, len(content)+bare+2)
	for i, b := range content {
		if b == '\n' && (i == 0 || content[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}
