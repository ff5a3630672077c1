package mail

import (
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// errConnectionGone marks a pipelined send that failed before the server
// answered its first command: the connection was gone, nothing of the mail
// was accepted, and it may go again on a new connection.
var errConnectionGone = errors.New("the connection was gone before the server answered")

// pipelining reports whether the server of conn takes commands in groups
// (PIPELINING, RFC 2920).
func pipelining(conn *gosmtp.Client) bool {
	ok, _ := conn.Extension("PIPELINING")
	return ok
}

// outgoing is a mail ready for the wire: its envelope and its content,
// rendered before the send waits for a connection, so that a connection
// is held for the round trips alone. A server without PIPELINING gets the
// mail through go-mail's own send, which renders it again: the price of
// keeping go-mail's one-command-at-a-time transaction, RSET included, for
// the servers that ask for it.
type outgoing struct {
	msg     *gomail.Msg // for go-mail's own send
	from    string      // envelope sender, <address>
	rcpts   []string    // envelope recipients, <address> each
	content []byte      // the message as sent after DATA, before dot-stuffing
}

// newOutgoing renders msg for sendPipelined.
func newOutgoing(msg *gomail.Msg) (outgoing, error) {
	from, err := msg.GetSender(false)
	if err != nil {
		return outgoing{}, fmt.Errorf("mail sender: %w", err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return outgoing{}, fmt.Errorf("mail recipients: %w", err)
	}
	var content bytes.Buffer
	if _, err := msg.WriteTo(&content); err != nil {
		return outgoing{}, fmt.Errorf("render the mail: %w", err)
	}
	return outgoing{msg: msg, from: from, rcpts: rcpts, content: content.Bytes()}, nil
}

// sendPipelined sends out on conn, whose server offers PIPELINING, as one
// mail transaction in two round trips: MAIL FROM, RCPT TO and DATA in one
// write, their replies read together, then the content and its end, whose
// reply accepts the mail. go-mail's own send waits for each command's reply
// and ends with RSET, five round trips, although the reply to the end of
// data already ends the transaction (RFC 5321, 4.1.1.4). Any failure leaves
// the connection in an unknown state: the caller closes it.
func sendPipelined(conn *gosmtp.Client, out outgoing, timeout time.Duration) error {
	if err := checkEnvelope(out); err != nil {
		return err
	}
	if err := conn.UpdateDeadline(timeout); err != nil {
		return fmt.Errorf("%w: %w", errConnectionGone, err)
	}
	text := conn.Text
	cmds := make([]string, 0, len(out.rcpts)+2)
	cmds = append(cmds, "MAIL FROM:"+out.from+mailParams(conn))
	for _, r := range out.rcpts {
		cmds = append(cmds, "RCPT TO:"+r)
	}
	cmds = append(cmds, "DATA")
	for _, c := range cmds {
		_, _ = text.W.WriteString(c + "\r\n") // a bufio.Writer keeps its error for Flush
	}
	if err := text.W.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errConnectionGone, err)
	}
	// Every reply of the group is read, so that a refused recipient is
	// reported as such and not as the DATA refusal it causes.
	var refused error
	for i, c := range cmds {
		expect := 250
		switch {
		case strings.HasPrefix(c, "RCPT"):
			expect = 25 // 250 or 251
		case c == "DATA":
			expect = 354
		}
		_, _, err := text.ReadResponse(expect)
		var reply *textproto.Error
		switch {
		case err == nil:
		case errors.As(err, &reply):
			if i == 0 && reply.Code == 421 { // closing the connection, before anything was accepted
				return fmt.Errorf("%w: %s: %w", errConnectionGone, verb(c), err)
			}
			if refused == nil {
				refused = fmt.Errorf("%s: %w", verb(c), err)
			}
		case i == 0:
			return fmt.Errorf("%w: %s: %w", errConnectionGone, verb(c), err)
		default:
			return fmt.Errorf("%s: %w", verb(c), err)
		}
	}
	if refused != nil {
		return refused
	}
	data := text.DotWriter()
	if _, err := data.Write(out.content); err != nil {
		return fmt.Errorf("write the mail's content: %w", err)
	}
	if err := data.Close(); err != nil {
		return fmt.Errorf("end the mail's content: %w", err)
	}
	if _, _, err := text.ReadResponse(250); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return nil
}

// mailParams are the MAIL FROM parameters go-mail's own send adds for the
// extensions the server offers.
func mailParams(conn *gosmtp.Client) string {
	var p string
	if ok, _ := conn.Extension("8BITMIME"); ok {
		p += " BODY=8BITMIME"
	}
	if ok, _ := conn.Extension("SMTPUTF8"); ok {
		p += " SMTPUTF8"
	}
	return p
}

// verb is the command's name without its arguments, for errors: the
// addresses are the user's.
func verb(cmd string) string {
	name, _, _ := strings.Cut(cmd, ":")
	return name
}
