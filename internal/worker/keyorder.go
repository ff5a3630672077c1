package worker

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/outbox"
)

// keyOrdered wraps a handler's subscriber so that the router works on at
// most limit of its messages at once and never on two of the same key
// (metadata outbox.MetadataKey): a message whose key is busy waits, in
// arrival order, until the one before it is acked or nacked. Messages
// without a key have no order and wait only for the limit.
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
		held     int                               // handed on or waiting, not yet acked or nacked
		waiting  = map[string][]*message.Message{} // busy keys and the messages queued behind them
		ready    []*message.Message                // their turn, not yet taken by the router
		finished = make(chan *message.Message)
	)
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
			go func() {
				select {
				case <-next.Acked():
				case <-next.Nacked():
				case <-quit:
					return
				}
				select {
				case finished <- next:
				case <-quit:
				}
			}()
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
