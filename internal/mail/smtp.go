package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// TLSMode says how the SMTP mailer protects the connection.
type TLSMode string

// The TLS modes of SMTPConfig.TLS, named as in the SMTP_TLS variable.
const (
	// TLSOpportunistic upgrades with STARTTLS when the server offers it and
	// sends in clear text otherwise.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSStartTLS requires STARTTLS: a server that does not offer it fails
	// the send.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone never encrypts.
	TLSNone TLSMode = "none"
)

// ParseTLSMode parses an SMTP_TLS value; "" is TLSModeDefault.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return TLSModeDefault, nil
	case TLSOpportunistic, TLSStartTLS, TLSImplicit, TLSNone:
		return m, nil
	default:
		return "", fmt.Errorf("SMTP TLS mode %q: want opportunistic, starttls, tls or none", s)
	}
}

// Defaults of SMTPConfig.
const (
	// TLSModeDefault is the default SMTPConfig.TLS.
	TLSModeDefault = TLSOpportunistic
	// TimeoutDefault is the default SMTPConfig.Timeout.
	TimeoutDefault = 15 * time.Second
	// ConcurrencyDefault is the default SMTPConfig.Concurrency.
	ConcurrencyDefault = 4
)

// SMTPConfig configures the SMTP mailer. String and LogValue never show the
// password.
type SMTPConfig struct {
	// Addr is the server's host:port (SMTP_ADDR). Defaults to nothing: it is
	// required.
	Addr string
	// From is the sender address (MAIL_FROM), optionally with a display name
	// ("outboxd <noreply@example.com>"). Defaults to nothing: it is required.
	From string
	// TLS is how the connection is protected (SMTP_TLS). Defaults to
	// TLSModeDefault.
	TLS TLSMode
	// Username turns on SMTP authentication (SMTP_USERNAME), with the
	// strongest mechanism both sides support; PLAIN and LOGIN only over TLS.
	// Defaults to "" (no authentication).
	Username string
	// Password goes with Username (SMTP_PASSWORD). It is never logged and
	// never part of an error. Defaults to "".
	Password string
	// Timeout bounds connecting and each SMTP command. Defaults to
	// TimeoutDefault.
	Timeout time.Duration
	// Concurrency is how many connections the mailer keeps to the server
	// and sends on at once (SMTP_CONCURRENCY). A Send beyond it waits, or,
	// to a server that streams (see SMTPMailer), rides on a busy
	// connection. Defaults to ConcurrencyDefault (4).
	Concurrency int
	// TLSConfig verifies the server's certificate. Defaults to the system's
	// roots and the host of Addr as server name.
	TLSConfig *tls.Config
	// Logger receives one line per sent mail. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c SMTPConfig) WithDefaults() SMTPConfig {
	c.TLS = cmp.Or(c.TLS, TLSModeDefault)
	c.Timeout = cmp.Or(c.Timeout, TimeoutDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// Validate reports every problem of c at once, naming the fields.
func (c SMTPConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("SMTP Addr (SMTP_ADDR) is required"))
	} else if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("SMTP Addr (SMTP_ADDR) %q: want host:port", c.Addr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("SMTP Addr (SMTP_ADDR) %q: invalid port", c.Addr))
	}
	if c.From == "" {
		errs = append(errs, errors.New("SMTP From (MAIL_FROM) is required"))
	} else if err := gomail.NewMsg().From(c.From); err != nil {
		errs = append(errs, fmt.Errorf("SMTP From (MAIL_FROM) %q: not an email address", c.From))
	}
	if _, err := ParseTLSMode(string(c.TLS)); err != nil {
		errs = append(errs, err)
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("SMTP Password (SMTP_PASSWORD) is set but Username (SMTP_USERNAME) is not"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("SMTP Concurrency (SMTP_CONCURRENCY) %d: must be at least 1", c.Concurrency))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("SMTP Timeout %s: must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// String describes c without its password.
func (c SMTPConfig) String() string {
	s := fmt.Sprintf("smtp://%s from=%q tls=%s", c.Addr, c.From, c.TLS)
	if c.Username != "" {
		s += fmt.Sprintf(" username=%q password=[redacted]", c.Username)
	}
	return s
}

// LogValue logs c without its password.
func (c SMTPConfig) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("addr", c.Addr),
		slog.String("from", c.From),
		slog.String("tls", string(c.TLS)),
	}
	if c.Username != "" {
		attrs = append(attrs, slog.String("username", c.Username), slog.Bool("password_set", c.Password != ""))
	}
	return slog.GroupValue(attrs...)
}

// SMTPMailer sends mails over SMTP on up to SMTPConfig.Concurrency
// connections that stay open between mails. To a server that offers
// PIPELINING and CHUNKING (go-smtp, Postfix 3.4+ and Exim do) each
// connection carries several mails at once, written without waiting for
// the replies of the ones before; to one that offers PIPELINING alone a mail
// takes two round trips, and to any other go-mail's five. It is safe for
// concurrent use. Close ends its connections; a Send after Close fails.
type SMTPMailer struct {
	cfg    SMTPConfig
	client *gomail.Client // settings, shared by every connection
	logger *slog.Logger
	lanes  []*lane
	closed chan struct{} // closed by Close
	closer sync.Once
	runs   sync.WaitGroup // a goroutine per lane

	mu      sync.Mutex
	freed   chan struct{} // closed, and made anew, when a lane finishes a job
	closing bool
}

// NewSMTP returns a mailer for cfg. It checks the configuration but does not
// connect: a server that is down fails each Send, not the start.
func NewSMTP(cfg SMTPConfig) (*SMTPMailer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(cfg.Timeout),
		// No NOOP before each mail on a reused connection: a round trip of
		// five per mail. A connection the server dropped fails at MAIL
		// FROM instead, before anything was accepted, and Send dials again
		// (staleConnection).
		gomail.WithoutNoop(),
	}
	switch cfg.TLS {
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.Username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password),
		)
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", cfg.Addr, err)
	}
	s := &SMTPMailer{
		cfg: cfg, client: client, logger: cfg.Logger,
		closed: make(chan struct{}), freed: make(chan struct{}),
	}
	for range cfg.Concurrency {
		l := &lane{queue: make(chan *job, streamWindow)}
		s.lanes = append(s.lanes, l)
		s.runs.Go(func() { s.run(l) })
	}
	return s, nil
}

// Send delivers m on one of the mailer's connections, waiting while each
// has as many mails in hand as it takes. A mail that meets a connection the
// server had dropped while idle, before the server answered anything of it,
// goes again on a new connection, up to goneAttempts times in all. A connection that failed is closed
// rather than reused. A permanent refusal by the server wraps ErrRejected.
// If ctx ends first, Send returns its error: a mail already written may
// still arrive.
func (s *SMTPMailer) Send(ctx context.Context, m Mail) error {
	msg, err := s.message(m)
	if err != nil {
		return err
	}
	out, err := newOutgoing(msg)
	if err != nil {
		return fmt.Errorf("send mail %s: %w", m.MessageID, err)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		j := &job{ctx: ctx, out: out, result: make(chan error, 1)}
		if err := s.pick(ctx, j); err != nil {
			return fmt.Errorf("send mail %s via %s: %w", m.MessageID, s.cfg.Addr, err)
		}
		select {
		case err = <-j.result:
		case <-ctx.Done():
			return fmt.Errorf("send mail %s via %s: %w", m.MessageID, s.cfg.Addr, ctx.Err())
		}
		if err == nil {
			break
		}
		if attempt == goneAttempts || !staleConnection(err) {
			return s.sendError(m, err)
		}
	}
	s.logger.InfoContext(ctx, "mail sent",
		"message_id", msg.GetMessageID(), "smtp_addr", s.cfg.Addr, "duration", time.Since(start))
	return nil
}

// goneAttempts is how many times Send tries a mail that keeps meeting a
// connection gone before the server answered anything of it: a dropped idle
// connection, and the mails written behind it, go again on a new one.
const goneAttempts = 3

// errMailerClosed fails the sends after Close.
var errMailerClosed = errors.New("the mailer is closed")

// send sends out on conn: pipelined when the server offers it, by
// go-mail's send, a round trip per command, otherwise.
func (s *SMTPMailer) send(conn *gosmtp.Client, out outgoing) error {
	if pipelining(conn) {
		return sendPipelined(conn, out, s.cfg.Timeout)
	}
	return s.client.SendWithSMTPClient(conn, out.msg)
}

// staleConnection reports whether a send on a reused connection failed
// because the connection was gone (the server or the network dropped it
// while idle) before the server accepted anything of the mail, so that the
// mail can go again on a new connection: the connection check failed, or
// MAIL FROM failed without an SMTP reply.
func staleConnection(err error) bool {
	if errors.Is(err, errConnectionGone) {
		return true
	}
	var sendErr *gomail.SendError
	if !errors.As(err, &sendErr) {
		return false
	}
	switch sendErr.Reason {
	case gomail.ErrConnCheck:
		return true
	case gomail.ErrSMTPMailFrom:
		return sendErr.ErrorCode() == 0 // no reply code: the connection failed, not the server
	}
	return false
}

// Close stops taking sends, waits for the replies of the mails its
// connections carry, and says goodbye (QUIT) on each.
func (s *SMTPMailer) Close() error {
	s.closer.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.closed)
	})
	s.runs.Wait()
	return nil
}

func (s *SMTPMailer) message(m Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("mail from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		// The address is the user's: say which mail, not whose.
		return nil, fmt.Errorf("mail %s: invalid recipient: %w", m.MessageID, ErrRejected)
	}
	msg.Subject(oneLine(m.Subject))
	if m.MessageID != "" {
		msg.SetGenHeader(gomail.HeaderMessageID, m.MessageID)
	}
	msg.SetDate()
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), oneLine(v))
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// sendError wraps err with the mail's id, marks permanent failures, and
// makes sure the password never travels in it.
func (s *SMTPMailer) sendError(m Mail, err error) error {
	permanent := permanentReply(err)
	if s.cfg.Password != "" && strings.Contains(err.Error(), s.cfg.Password) {
		// Unwrapping would expose the original text, so keep only a redacted copy.
		err = errors.New(strings.ReplaceAll(err.Error(), s.cfg.Password, "[redacted]"))
	}
	if permanent {
		return fmt.Errorf("send mail %s via %s: %w: %w", m.MessageID, s.cfg.Addr, ErrRejected, err)
	}
	return fmt.Errorf("send mail %s via %s: %w", m.MessageID, s.cfg.Addr, err)
}

// permanentReply reports whether err holds a permanent refusal by the
// server: a 5xx reply, through go-mail's send or a pipelined one.
func permanentReply(err error) bool {
	var (
		sendErr *gomail.SendError
		reply   *textproto.Error
	)
	switch {
	case errors.As(err, &sendErr):
		return sendErr.ErrorCode() >= 500 && sendErr.ErrorCode() < 600
	case errors.As(err, &reply):
		return reply.Code >= 500 && reply.Code < 600
	}
	return false
}

// oneLine keeps header values on one line, so that no user-supplied text can
// add header fields.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}
