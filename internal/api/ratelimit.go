package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/outboxd/outboxd/internal/problem"
)

// maxTrackedClients bounds the limiter's memory (about 200 bytes a client).
const maxTrackedClients = 100_000

// clientLimiter limits requests per client address with one token bucket
// per client: perMinute tokens, refilled continuously.
//
// A bucket untouched for a minute is full again, the same as a new one, so
// idle buckets are dropped without changing anyone's limit. Sweeps happen
// inline, at most once per idle period (no goroutine to stop). When more
// than maxClients addresses are active within a minute, arbitrary buckets
// are dropped to make room: memory stays bounded, and the limit of those
// clients restarts full.
type clientLimiter struct {
	limit      rate.Limit
	burst      int
	idleAfter  time.Duration
	maxClients int
	now        func() time.Time

	mu        sync.Mutex
	clients   map[string]*clientBucket
	lastSweep time.Time
}

type clientBucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newClientLimiter(perMinute, maxClients int, now func() time.Time) *clientLimiter {
	return &clientLimiter{
		limit:      rate.Limit(float64(perMinute) / 60),
		burst:      perMinute,
		idleAfter:  time.Minute,
		maxClients: maxClients,
		now:        now,
		clients:    make(map[string]*clientBucket),
		lastSweep:  now(),
	}
}

// reserve takes a token for client. It returns 0 when the request may go on,
// and otherwise how long until the client's next token (taking none).
func (l *clientLimiter) reserve(client string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idleAfter {
		l.sweep(now)
	}
	b := l.clients[client]
	if b == nil {
		for k := range l.clients {
			if len(l.clients) < l.maxClients {
				break
			}
			delete(l.clients, k)
		}
		b = &clientBucket{limiter: rate.NewLimiter(l.limit, l.burst)}
		l.clients[client] = b
	}
	b.lastSeen = now
	r := b.limiter.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return delay
	}
	return 0
}

// sweep drops buckets idle long enough to be full again.
func (l *clientLimiter) sweep(now time.Time) {
	for k, b := range l.clients {
		if now.Sub(b.lastSeen) >= l.idleAfter {
			delete(l.clients, k)
		}
	}
	l.lastSweep = now
}

// tracked is the number of clients with a bucket.
func (l *clientLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// middleware answers 429 with Retry-After to a client over its limit; key
// names a request's client.
func (l *clientLimiter) middleware(key func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if delay := l.reserve(key(r)); delay > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
				problem.Write(w, r, problem.Problem{
					Type:   problem.TypeRateLimited,
					Title:  "Too many signups",
					Status: http.StatusTooManyRequests,
					Detail: "too many signup requests from this address; retry after the number of seconds in Retry-After",
				})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
