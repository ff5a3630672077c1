package profilerpc

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// fanIn subscribes n times to a topic and merges the subscriptions into one
// channel, for transports that hand over one message at a time per
// subscription: the router then works on up to n messages at once.
type fanIn struct {
	message.Subscriber
	n int
}

// Subscribe implements message.Subscriber. The merged channel closes once
// every subscription has closed (the subscriber closed or ctx ended).
func (f *fanIn) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for range max(f.n, 1) {
		in, err := f.Subscriber.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			wg.Wait()
			return nil, err
		}
		wg.Go(func() {
			for msg := range in {
				select {
				case out <- msg:
				case <-ctx.Done():
					// Nobody reads any more: give it back to the queue.
					msg.Nack()
				}
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}
