package relay

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Config, used for every field left at its zero value.
const (
	// BatchSizeDefault is the default number of rows claimed at once.
	BatchSizeDefault = 500
	// ConcurrencyDefault is the default number of parallel key lanes.
	// Draining into NATS JetStream on loopback (BenchmarkRelayDrainNATS),
	// 16 lanes publish about 3 times faster than 1, and 32 barely more.
	ConcurrencyDefault = 16
	// PollIntervalDefault is the default fallback poll when no notification
	// arrives.
	PollIntervalDefault = time.Second
	// MaxAttemptsDefault is the default number of attempts at a message the
	// broker rejects for good before it is dead-lettered.
	MaxAttemptsDefault = 5
	// RetryBackoffMinDefault is the default first retry delay.
	RetryBackoffMinDefault = 100 * time.Millisecond
	// RetryBackoffMaxDefault is the default cap of the retry delay.
	RetryBackoffMaxDefault = 10 * time.Second
	// LockKeyDefault is the default advisory lock id of the leader: "outbox"
	// in ASCII, unlikely to collide with an application's own locks.
	LockKeyDefault int64 = 0x6f7574626f78
	// StallTimeoutDefault is the default time without progress, while
	// messages wait, after which Ready reports the relay stalled.
	StallTimeoutDefault = 30 * time.Second
	// MetricsIntervalDefault is the default period of the pass that measures
	// the backlog and the visibility horizon.
	MetricsIntervalDefault = 5 * time.Second
	// CaptureDefault is the default capture mode: polling needs nothing of
	// the server but the outbox table.
	CaptureDefault = CapturePoll
	// PublicationDefault is the publication of the outbox's inserts that
	// package schema creates.
	PublicationDefault = "outbox_publication"
	// WALStatusIntervalDefault is the default period at which the WAL stream
	// reports its position to the server and asks for a keepalive.
	WALStatusIntervalDefault = 10 * time.Second
)

// Config tunes a Relay. The zero value is ready to use: every field has a
// default.
type Config struct {
	// BatchSize is the most rows claimed, published and removed at once.
	// Defaults to BatchSizeDefault (500).
	BatchSize int

	// Concurrency is the number of lanes publishing a batch in parallel.
	// Messages are spread over lanes by a hash of their key, so the messages
	// of one key stay in order in one lane while different keys overlap
	// their broker round trips. Defaults to ConcurrencyDefault (16).
	Concurrency int

	// PollInterval is how often the relay looks for rows when no
	// notification wakes it; it covers notifications lost while the listening
	// connection was down. Defaults to PollIntervalDefault (1 s).
	PollInterval time.Duration

	// Retention keeps published rows for this long, marked with
	// published_at, before a background pass deletes them; 0 deletes them as
	// soon as they are published. Defaults to 0.
	Retention time.Duration

	// MaxAttempts is the number of attempts at a message that the broker
	// rejects for good (see IsPermanent) before it moves to
	// outbox_dead_letters. Transient failures never count. Defaults to
	// MaxAttemptsDefault (5).
	MaxAttempts int

	// RetryBackoffMin is the first delay before retrying after a failure;
	// each further failure doubles it, with jitter. Defaults to
	// RetryBackoffMinDefault (100 ms).
	RetryBackoffMin time.Duration

	// RetryBackoffMax caps the retry delay. Defaults to
	// RetryBackoffMaxDefault (10 s).
	RetryBackoffMax time.Duration

	// IsPermanent tells whether a publish error means the broker rejects
	// this message for good (too large, invalid), as opposed to a broker that
	// is down or slow. An error wrapping ErrPermanent is permanent whatever
	// this returns. Defaults to errors.Is(err, ErrPermanent).
	IsPermanent func(error) bool

	// LockKey is the PostgreSQL advisory lock whose holder is the one active
	// relay; replicas sharing a database and a LockKey elect one leader.
	// Defaults to LockKeyDefault.
	LockKey int64

	// StallTimeout is how long the leader may go without publishing, while
	// messages are waiting, before Ready reports it stalled. Defaults to
	// StallTimeoutDefault (30 s).
	StallTimeout time.Duration

	// MetricsInterval is the period of the pass that measures the backlog,
	// the oldest pending message and the visibility horizon with SQL.
	// Defaults to MetricsIntervalDefault (5 s).
	MetricsInterval time.Duration

	// Capture is how the leader finds committed rows: CapturePoll claims
	// them from the table under the transaction horizon, CaptureWAL streams
	// the outbox's inserts from a logical replication slot in commit order,
	// CaptureAuto streams where the server allows it and polls otherwise.
	// Defaults to CaptureDefault (CapturePoll).
	Capture Capture

	// Slot is the logical replication slot of CaptureWAL. Slot names are
	// shared by every database of a cluster, so relays of different
	// databases need different slots; the leader of each database owns
	// its slot. Defaults to SlotName of the pool's database.
	Slot string

	// Publication is the publication the slot reads: the outbox table's
	// inserts. Defaults to PublicationDefault, which package schema creates.
	Publication string

	// WALStatusInterval is how often the WAL stream confirms its position to
	// the server and, when nothing is pending, asks for a keepalive to
	// advance an idle slot. Defaults to WALStatusIntervalDefault (10 s).
	WALStatusInterval time.Duration

	// Name identifies this replica in logs and in the relay_leader table.
	// Defaults to the host name and the process id.
	Name string

	// Logger receives the relay's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Registerer registers the relay's Prometheus metrics. Defaults to nil:
	// the metrics are kept but not registered.
	Registerer prometheus.Registerer

	// TracerProvider makes the "publish <topic>" span of each message, a
	// child of the trace context stored in the row's "traceparent" metadata.
	// Defaults to otel.GetTracerProvider(), which records nothing until an
	// application installs a provider.
	TracerProvider trace.TracerProvider
}

// ErrPermanent marks a publish error as the broker rejecting the message for
// good. Publishers (or wrappers around them) return an error wrapping it, so
// that the default IsPermanent counts the attempt and eventually
// dead-letters the message instead of retrying it forever.
var ErrPermanent = errors.New("relay: message rejected permanently")

// WithDefaults returns c with every zero field set to its default. Slot,
// which depends on the database, is left to New when empty.
func (c Config) WithDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, BatchSizeDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, MaxAttemptsDefault)
	c.RetryBackoffMin = cmp.Or(c.RetryBackoffMin, RetryBackoffMinDefault)
	c.RetryBackoffMax = cmp.Or(c.RetryBackoffMax, max(RetryBackoffMaxDefault, c.RetryBackoffMin))
	c.LockKey = cmp.Or(c.LockKey, LockKeyDefault)
	c.StallTimeout = cmp.Or(c.StallTimeout, StallTimeoutDefault)
	c.MetricsInterval = cmp.Or(c.MetricsInterval, MetricsIntervalDefault)
	c.Name = cmp.Or(c.Name, defaultName())
	c.Capture = cmp.Or(c.Capture, CaptureDefault)
	c.Publication = cmp.Or(c.Publication, PublicationDefault)
	c.WALStatusInterval = cmp.Or(c.WALStatusInterval, WALStatusIntervalDefault)
	if c.IsPermanent == nil {
		c.IsPermanent = func(err error) bool { return errors.Is(err, ErrPermanent) }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	return c
}

// validate reports every out-of-range field of a defaulted config, by name.
func (c Config) validate() error {
	var errs []error
	positive := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("relay config: %s must be positive", name))
		}
	}
	positive("BatchSize", c.BatchSize > 0)
	positive("Concurrency", c.Concurrency > 0)
	positive("PollInterval", c.PollInterval > 0)
	positive("MaxAttempts", c.MaxAttempts > 0)
	positive("RetryBackoffMin", c.RetryBackoffMin > 0)
	positive("StallTimeout", c.StallTimeout > 0)
	positive("MetricsInterval", c.MetricsInterval > 0)
	positive("WALStatusInterval", c.WALStatusInterval > 0)
	if _, err := ParseCapture(string(c.Capture)); err != nil {
		errs = append(errs, fmt.Errorf("relay config: Capture: %w", err))
	}
	if c.Slot != "" && !validSlotName(c.Slot) {
		errs = append(errs, fmt.Errorf("relay config: Slot %q must be 1 to 63 lower-case letters, digits and underscores", c.Slot))
	}
	if !validIdentifier(c.Publication) {
		errs = append(errs, fmt.Errorf("relay config: Publication %q is not a valid name", c.Publication))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("relay config: Retention must not be negative"))
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		errs = append(errs, errors.New("relay config: RetryBackoffMax must not be below RetryBackoffMin"))
	}
	return errors.Join(errs...)
}

func defaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "relay"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
