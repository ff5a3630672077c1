package worker

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/outbox"
)

// keyOrdered wraps a handler's subscriber so that the router works on at
// most limit of its messages at once and never on two of the same key
// (metadata outbox.MetadataKey): a message whose key is busy waits, in
// arrival order, until the handler is done with the one before it (its
// last attempt returned, just before the router acks or nacks it; the
// releaseKey middleware says so). Messages without a key have no order and
// wait only for the limit.
//
// The rule sits between the subscriber and the router, not in a middleware,
// because the router starts a goroutine per message: only here is the
// arrival order still known. A waiting message counts towards limit, so no
// more than limit messages are held unacknowledged.
type keyOrdered struct {
	message.Subscriber
	limit int
}

// Subscribe subscribes the wrapped subscriber and hands its messages on in
// turn. The returned channel closes when the wrapped one does or ctx ends;
// messages still waiting then are neither acked nor nacked, and the broker
// redelivers them.
func (s keyOrdered) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go s.forward(ctx, in, out)
	return out, nil
}

func (s keyOrdered) forward(ctx context.Context, in <-chan *message.Message, out chan<- *message.Message) {
	defer close(out)
	quit := make(chan struct{})
	defer close(quit)
	var (
		held     int                               // handed on or waiting, not yet released
		waiting  = map[string][]*message.Message{} // busy keys and the messages queued behind them
		ready    []*message.Message                // their turn, not yet taken by the router
		finished = make(chan *message.Message)
	)
	// releasable gives m, as it arrives, the release that releaseKey
	// calls once its handler is done.
	releasable := func(m *message.Message) {
		var once sync.Once
		m.SetContext(context.WithValue(m.Context(), releaseCtxKey, release(func() {
			once.Do(func() {
				select {
				case finished <- m:
				case <-quit:
				}
			})
		})))
	}
	for {
		source := in
		if held >= s.limit || in == nil {
			source = nil
		}
		var (
			sink chan<- *message.Message
			next *message.Message
		)
		if len(ready) > 0 {
			sink, next = out, ready[0]
		}
		select {
		case m, ok := <-source:
			if !ok {
				return
			}
			held++
			releasable(m)
			key := m.Metadata.Get(outbox.MetadataKey)
			if key == "" {
				ready = append(ready, m)
				continue
			}
			if queue, busy := waiting[key]; busy {
				waiting[key] = append(queue, m)
				continue
			}
			waiting[key] = nil
			ready = append(ready, m)
		case sink <- next:
			ready = ready[1:]
		case m := <-finished:
			held--
			key := m.Metadata.Get(outbox.MetadataKey)
			if key == "" {
				continue
			}
			if queue := waiting[key]; len(queue) > 0 {
				ready = append(ready, queue[0])
				waiting[key] = queue[1:]
			} else {
				delete(waiting, key)
			}
		case <-ctx.Done():
			return
		}
	}
}

// release frees a message's place in keyOrdered: its key and its part of
// the limit.
type release func()

type releaseCtxKeyType struct{}

// releaseCtxKey holds a message's release in its context.
var releaseCtxKey releaseCtxKeyType

// releaseKey is the outermost middleware of a handler behind keyOrdered:
// once the handler is done with a message, the next message of its key may
// go. Doing it here rather than on the router's ack costs no goroutine a
// message; the message's effects are committed by then, so its key's order
// holds. It also grows the goroutine's stack first (growStack).
func releaseKey(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		growStack()
		if r, ok := msg.Context().Value(releaseCtxKey).(release); ok {
			defer r()
		}
		return h(msg)
	}
}

// growStack grows the router's goroutine for a message, which starts
// small, to the size its handler chain needs while the stack is still
// shallow: grown at depth instead, inside the middleware, the runtime
// copied it two or three times a message, adjusting every frame, which
// cost 12 % of the worker's CPU in `outboxd bench worker` (4 % after).
//
//go:noinline
func growStack() {
	var buf [stackReserve]byte
	keepStack(buf[:])
}

// keepStack keeps growStack's buffer from being optimised away.
//
//go:noinline
func keepStack([]byte) {}

// stackReserve is the stack growStack reserves: more than the handler
// chain's deepest path uses.
const stackReserve = 8 << 10
