package console

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// AddrDefault is the default Config.Addr: loopback only.
	AddrDefault = "127.0.0.1:9092"
	// UserDefault is the default Config.User.
	UserDefault = "admin"
	// RefreshIntervalDefault is the default Config.RefreshInterval.
	RefreshIntervalDefault = 2 * time.Second
	// SampleIntervalDefault is the default Config.SampleInterval.
	SampleIntervalDefault = 5 * time.Second
	// WindowDefault is the default Config.Window.
	WindowDefault = 15 * time.Minute
	// PageSizeDefault is the default Config.PageSize.
	PageSizeDefault = 50
)

// Config configures a Console.
type Config struct {
	// Addr is the address the console listens on, host:port. Defaults to
	// AddrDefault (127.0.0.1:9092).
	Addr string
	// User is the basic-auth user name. Defaults to UserDefault (admin).
	User string
	// Password turns basic auth on. It is required when Addr is not a
	// loopback address. Defaults to none (no auth, loopback only).
	Password string
	// PathPrefix is where the console lives behind a reverse proxy, such as
	// "/outboxd": every page, asset and link is under it. The proxy passes
	// the path on unchanged. Defaults to "" (the root).
	PathPrefix string
	// Hosts are the names, besides IP addresses and localhost, that
	// requests may address the console by in their Host header (the
	// reverse proxy's public name, say). Defaults to none.
	Hosts []string
	// RelayMetrics is the URL of a relay's /metrics, sampled for the
	// charts. Defaults to none: the charts show the backlog only.
	RelayMetrics string
	// WorkerMetrics is the URL of a worker's /metrics, sampled for the
	// charts. Defaults to none.
	WorkerMetrics string
	// RefreshInterval is how often the overview's figures are read from the
	// database, and how often the page asks for them. Defaults to
	// RefreshIntervalDefault (2 s).
	RefreshInterval time.Duration
	// SampleInterval is how often the /metrics are sampled. Defaults to
	// SampleIntervalDefault (5 s).
	SampleInterval time.Duration
	// Window is how much history the charts keep in memory. Defaults to
	// WindowDefault (15 minutes).
	Window time.Duration
	// PageSize is how many dead letters a page lists. Defaults to
	// PageSizeDefault (50).
	PageSize int
	// Logger receives the console's logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default, and the
// path prefix in its canonical form ("/x", no trailing slash, or "").
func (c Config) WithDefaults() Config {
	c.Addr = cmp.Or(c.Addr, AddrDefault)
	c.User = cmp.Or(c.User, UserDefault)
	c.PathPrefix = strings.TrimRight(c.PathPrefix, "/")
	if c.PathPrefix != "" && !strings.HasPrefix(c.PathPrefix, "/") {
		c.PathPrefix = "/" + c.PathPrefix
	}
	c.RefreshInterval = cmp.Or(c.RefreshInterval, RefreshIntervalDefault)
	c.SampleInterval = cmp.Or(c.SampleInterval, SampleIntervalDefault)
	c.Window = cmp.Or(c.Window, WindowDefault)
	c.PageSize = cmp.Or(c.PageSize, PageSizeDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// ErrPasswordRequired is returned by Validate for a non-loopback Addr
// without a Password.
var ErrPasswordRequired = errors.New("set CONSOLE_PASSWORD: the console listens beyond loopback and would otherwise serve anyone")

// Validate reports every problem of a defaulted config at once, each naming
// its environment variable.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("CONSOLE_ADDR=%s: want host:port", c.Addr))
	} else if c.Password == "" && !IsLoopback(host) {
		errs = append(errs, fmt.Errorf("CONSOLE_ADDR=%s: %w", c.Addr, ErrPasswordRequired))
	}
	if strings.ContainsAny(c.PathPrefix, "?#%\"'<> ") {
		errs = append(errs, fmt.Errorf("CONSOLE_PATH_PREFIX=%s: a plain path such as /outboxd", c.PathPrefix))
	}
	for env, u := range map[string]string{"CONSOLE_RELAY_METRICS": c.RelayMetrics, "CONSOLE_WORKER_METRICS": c.WorkerMetrics} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%s: want an http(s) URL such as http://127.0.0.1:9090/metrics", env, u))
		}
	}
	if c.RefreshInterval <= 0 || c.SampleInterval <= 0 || c.Window < c.SampleInterval || c.PageSize <= 0 {
		errs = append(errs, errors.New("console: RefreshInterval, SampleInterval and PageSize must be positive and Window at least SampleInterval"))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (a name or an IP address, without port)
// reaches this machine only: localhost or a loopback address. The empty
// host, which listens on every interface, is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
