package profilerpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// errRepliesClosed is returned to a request that starts after the Client
// stopped.
var errRepliesClosed = errors.New("profile client stopped")

// replyMux is the message.Subscriber the Client's request–reply backend
// listens on. The component subscribes once per request, with the
// request's operation id as the topic; replyMux serves all of them from the
// one broker subscription to the Client's reply topic (dispatch), handing
// each reply to the request whose operation id it carries.
//
// A subscription per request on the broker would cost a queue declaration
// per request on RabbitMQ, and several consumers on one reply queue would
// each get a share of the replies, most of them someone else's.
type replyMux struct {
	logger *slog.Logger
	late   prometheus.Counter

	mu      sync.Mutex
	waiting map[string]*waiter
	closed  bool
}

// waiter is one request listening for its reply.
type waiter struct {
	ctx       context.Context // the request's subscription: done once it gave up
	ch        chan *message.Message
	delivered bool
}

func newReplyMux(logger *slog.Logger, late prometheus.Counter) *replyMux {
	return &replyMux{logger: logger, late: late, waiting: make(map[string]*waiter)}
}

// Subscribe implements message.Subscriber for one operation id. The channel
// receives at most one reply, the first that arrives: the component's
// listener blocks for good if it is handed a second one nobody reads. It is
// closed when ctx ends or the mux closes.
func (m *replyMux) Subscribe(ctx context.Context, operationID string) (<-chan *message.Message, error) {
	w := &waiter{ctx: ctx, ch: make(chan *message.Message, 1)}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, errRepliesClosed
	case m.waiting[operationID] != nil:
		return nil, fmt.Errorf("operation %s is already waiting for a reply", operationID)
	}
	m.waiting[operationID] = w
	context.AfterFunc(ctx, func() { m.forget(operationID, w) })
	return w.ch, nil
}

// forget removes w and closes its channel, unless closeAll did.
func (m *replyMux) forget(operationID string, w *waiter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiting[operationID] == w {
		delete(m.waiting, operationID)
		close(w.ch)
	}
}

// Close implements message.Subscriber. It does nothing: the Client closes
// the mux (closeAll) when it stops, not the component.
func (m *replyMux) Close() error { return nil }

// dispatch hands msg to the request waiting for it. A reply nobody waits
// for any more (its request timed out) or a second reply to one request is
// dropped: acked, counted as late and logged at debug level. It is the
// expected end of a reply that took too long, not an error.
func (m *replyMux) dispatch(msg *message.Message) {
	// The transport hands over the next reply only after this one's ack.
	msg.Ack()
	id := msg.Metadata.Get(requestreply.OperationIDMetadataKey)
	m.mu.Lock()
	w := m.waiting[id]
	// A request that gave up may still be listed: forget runs after its
	// context ends, in a goroutine of its own, which a reply can beat.
	delivered := w != nil && !w.delivered && w.ctx.Err() == nil
	if delivered {
		w.delivered = true
		w.ch <- msg // never blocks: the first and only send on a 1-buffer
	}
	m.mu.Unlock()
	if !delivered {
		m.late.Inc()
		m.logger.Debug("reply dropped: its request no longer waits (timed out) or was answered already",
			"operation_id", id, "message_uuid", msg.UUID)
	}
}

// closeAll ends every waiting request's subscription and refuses new ones.
func (m *replyMux) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for id, w := range m.waiting {
		delete(m.waiting, id)
		close(w.ch)
	}
}

// inFlight is the number of requests waiting for a reply.
func (m *replyMux) inFlight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiting)
}
