package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
)

// attempt is the outcome of one signup request.
type attempt struct {
	email      string
	start, end time.Time
	status     int    // 0 when no response arrived
	err        error  // transport error
	retryAfter string // the Retry-After header of the response
	userID     uuid.UUID
}

// window is a span of time during which a fault was in force.
type window struct{ from, to time.Time }

func (w window) overlaps(a attempt) bool { return !a.end.Before(w.from) && !a.start.After(w.to) }

// load signs users up over HTTP at a steady rate, each request in its own
// goroutine so that a slow answer does not slow the rate down.
type load struct {
	url    string
	client *http.Client

	mu       sync.Mutex
	attempts []attempt
	wg       sync.WaitGroup
}

func newLoad(url string) *load {
	return &load{url: url, client: &http.Client{Timeout: 30 * time.Second}}
}

// run sends rate signups per second until ctx ends, then waits for the
// requests in flight.
func (l *load) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			l.wg.Wait()
			return
		case <-tick.C:
		}
		email := fmt.Sprintf("soak-%d-%s@example.com", i, uuid.NewString()[:8])
		l.wg.Go(func() { l.signup(email) })
	}
}

func (l *load) signup(email string) {
	a := attempt{email: email, start: time.Now()}
	body, _ := json.Marshal(map[string]string{"email": email, "name": "Soak User", "password": "correct horse battery"})
	resp, err := l.client.Post(l.url+"/v1/signup", "application/json", bytes.NewReader(body))
	if err != nil {
		a.err = err
	} else {
		a.status = resp.StatusCode
		a.retryAfter = resp.Header.Get("Retry-After")
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			var u struct {
				ID uuid.UUID `json:"id"`
			}
			if err := json.Unmarshal(raw, &u); err != nil {
				a.err = fmt.Errorf("decode 201 body: %w", err)
			}
			a.userID = u.ID
		}
	}
	a.end = time.Now()
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

func (l *load) results() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.attempts...)
}
