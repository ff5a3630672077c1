package mail

import (
	"context"
	"fmt"

	gosmtp "github.com/wneessen/go-mail/smtp"
)

// job is one Send's mail on its way: the mailer hands it to a lane, which
// sends it and finishes it with its outcome.
type job struct {
	ctx    context.Context
	out    outgoing
	lane   *lane
	result chan error // buffered: finishing never blocks
}

// lane is one of the mailer's SMTPConfig.Concurrency connections, with the
// goroutine that sends on it: it dials when it has no connection or its
// connection failed, then sends the jobs it was handed. To a server that
// offers PIPELINING and CHUNKING it streams them (the jobs handed while it
// writes leave in one write, up to streamWindow unanswered); to any other
// it sends one at a time. Its load fields are the mailer's, under its mutex.
type lane struct {
	queue chan *job // handed, not yet taken; room for streamWindow

	load     int  // jobs handed and not finished
	dialled  bool // has a connection, as far as the mailer knows
	streamed bool // its connection streams
}

// capacity is how many jobs l may hold at once: a lane not yet connected
// or one mail at a time takes one.
func (l *lane) capacity() int {
	if l.dialled && l.streamed {
		return streamWindow
	}
	return 1
}

// pick hands j to the least loaded lane: a connected one with nothing in
// hand first, then one to dial, then the connected one holding the fewest,
// so that mails spread over the connections and a connection carries
// several only when every connection is busy. It waits while every lane is
// full.
func (s *SMTPMailer) pick(ctx context.Context, j *job) error {
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return errMailerClosed
		}
		var best *lane
		rank := func(l *lane) int {
			switch {
			case l.dialled && l.load == 0:
				return 0
			case !l.dialled:
				return 1
			}
			return 1 + l.load
		}
		for _, l := range s.lanes {
			if l.load < l.capacity() && (best == nil || rank(l) < rank(best)) {
				best = l
			}
		}
		if best != nil {
			best.load++
			j.lane = best
			best.queue <- j // never blocks: the queue has room for a full load
			s.mu.Unlock()
			return nil
		}
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finish hands j its outcome and frees its place on its lane.
func (s *SMTPMailer) finish(j *job, err error) {
	s.mu.Lock()
	j.lane.load--
	s.wakeLocked()
	s.mu.Unlock()
	j.result <- err
}

// connected records whether l has a connection now, and whether it
// streams; the sends waiting look again, since l may take more now.
func (s *SMTPMailer) connected(l *lane, dialled, streamed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.dialled, l.streamed = dialled, streamed
	s.wakeLocked()
}

// wakeLocked wakes the sends waiting for room on a lane; s.mu is held.
func (s *SMTPMailer) wakeLocked() {
	close(s.freed)
	s.freed = make(chan struct{})
}

// run sends l's jobs until the mailer closes, then fails the jobs still
// waiting, waits for the replies of those written, and says goodbye.
func (s *SMTPMailer) run(l *lane) {
	var (
		conn *gosmtp.Client // one mail at a time; nil when st is used
		st   *stream
	)
	retire := func() {
		if st != nil {
			st.retire(s.quit)
		}
		if conn != nil {
			if err := conn.UpdateDeadline(s.cfg.Timeout); err == nil {
				_ = s.quit(conn)
			}
			_ = conn.Close() // QUIT closes only when answered
		}
		conn, st = nil, nil
		s.connected(l, false, false)
	}
	defer retire()
	// carried is a job that a connection found broken did not take: it goes
	// first on the next one, at no cost to its attempts. carries counts the
	// connections in a row that did so, so that a server dropping every
	// connection at once cannot keep it forever.
	var (
		carried *job
		carries int
	)
	for {
		j := carried
		if j == nil {
			carries = 0
			select {
			case j = <-l.queue:
			case <-s.closed:
				s.failQueued(l)
				return
			}
		}
		carried = nil
		if st != nil && !st.writable() {
			retire()
		}
		if err := j.ctx.Err(); err != nil { // its Send returned already
			s.finish(j, err)
			continue
		}
		if conn == nil && st == nil {
			c, err := s.client.DialToSMTPClientWithContext(j.ctx)
			if err != nil {
				s.finish(j, fmt.Errorf("dial failed: %w", err))
				continue
			}
			if streaming(c) {
				st = newStream(c, s.cfg.Timeout, s.finish)
			} else {
				conn = c
			}
			s.connected(l, true, st != nil)
		}
		if conn != nil {
			err := s.send(conn, j.out)
			if err != nil {
				_ = conn.Close()
				conn = nil
				s.connected(l, false, false)
			}
			s.finish(j, err)
			continue
		}
		if !st.write(j) {
			if carries++; carries >= goneAttempts {
				s.finish(j, fmt.Errorf("%w: %d new connections in a row broke before the mail was written", errConnectionGone, carries))
				continue
			}
			carried = j
			continue
		}
		for more := true; more; {
			select {
			case j := <-l.queue:
				if !st.write(j) {
					carried, more = j, false
				}
			default:
				more = false
			}
		}
		st.flush()
	}
}

// failQueued fails the jobs handed to l and not taken, once the mailer
// closes: no job is handed to l any more, so its queue holds them all.
func (s *SMTPMailer) failQueued(l *lane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		select {
		case j := <-l.queue:
			l.load--
			j.result <- errMailerClosed
		default:
			return
		}
	}
}

// quit says goodbye on conn and closes it.
func (s *SMTPMailer) quit(conn *gosmtp.Client) error {
	return s.client.CloseWithSMTPClient(conn)
}
