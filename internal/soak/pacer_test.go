package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// pacer signs users up at a fixed rate, open loop: a ticker says when
// signups are due (as many as the time since the start calls for, so a late
// tick sends the ones it missed), each signup goes out in its own
// goroutine, and at most maxInFlight are outstanding. A signup due while
// that many are in flight is not sent but counted as skipped: an API that
// falls behind shows as skipped signups, not as a quietly lower rate.
type pacer struct {
	url         string
	client      *http.Client
	rate        int
	maxInFlight int
	// created is told the user id of every 201 and when it arrived.
	created func(id uuid.UUID, at time.Time)

	sem     chan struct{}
	wg      sync.WaitGroup
	due     atomic.Int64 // signups the schedule has called for
	skipped atomic.Int64

	mu       sync.Mutex
	byStatus map[int]int
	failures int      // transport errors and undecodable 201s
	firstErr []string // the first few failures, for the log
}

func newPacer(url string, rate, maxInFlight int, created func(uuid.UUID, time.Time)) *pacer {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Keep a connection for every request that may be in flight, so the
	// load does not open and close a connection per signup for half an hour.
	transport.MaxIdleConnsPerHost = maxInFlight
	return &pacer{
		url:         url,
		client:      &http.Client{Timeout: 30 * time.Second, Transport: transport},
		rate:        rate,
		maxInFlight: maxInFlight,
		created:     created,
		sem:         make(chan struct{}, maxInFlight),
		byStatus:    map[int]int{},
	}
}

// run signs users up until ctx ends, then waits for the signups in flight.
func (p *pacer) run(ctx context.Context) {
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(p.rate))
	defer tick.Stop()
	defer p.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			want := int64(now.Sub(start).Seconds() * float64(p.rate))
			for n := p.due.Load(); n < want; n++ {
				p.due.Add(1)
				select {
				case p.sem <- struct{}{}:
					email := fmt.Sprintf("long-%d@example.com", n)
					p.wg.Go(func() {
						defer func() { <-p.sem }()
						p.signup(email)
					})
				default:
					p.skipped.Add(1)
				}
			}
		}
	}
}

func (p *pacer) signup(email string) {
	body, _ := json.Marshal(map[string]string{"email": email, "name": "Soak User", "password": "correct horse battery"})
	resp, err := p.client.Post(p.url+"/v1/signup", "application/json", bytes.NewReader(body))
	at := time.Now()
	if err != nil {
		p.fail(fmt.Sprintf("signup %s: %v", email, err))
		return
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	p.mu.Lock()
	p.byStatus[resp.StatusCode]++
	p.mu.Unlock()
	if resp.StatusCode != http.StatusCreated {
		p.fail(fmt.Sprintf("signup %s: %d %s", email, resp.StatusCode, bytes.TrimSpace(raw)))
		return
	}
	var u struct {
		ID uuid.UUID `json:"id"`
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.ID == uuid.Nil {
		p.fail(fmt.Sprintf("signup %s: 201 body %q: %v", email, raw, err))
		return
	}
	p.created(u.ID, at)
}

func (p *pacer) fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures++
	if len(p.firstErr) < 5 {
		p.firstErr = append(p.firstErr, msg)
	}
}

// outcome is what the pacer did: signups due, skipped for the in-flight
// bound, answered by status, and failed (not 201, or no answer).
type outcome struct {
	due, skipped int64
	byStatus     map[int]int
	failures     int
	firstErr     []string
}

func (p *pacer) outcome() outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	by := map[int]int{}
	for k, v := range p.byStatus {
		by[k] = v
	}
	return outcome{due: p.due.Load(), skipped: p.skipped.Load(), byStatus: by, failures: p.failures,
		firstErr: append([]string(nil), p.firstErr...)}
}
