package broker

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// errSubscriberClosed is what Subscribe and SubscribeInitialize return
// once Close has begun.
var errSubscriberClosed = errors.New("subscriber closed")

// subscriptions are the running subscriptions of one of our subscribers
// (NATS, RabbitMQ, Redis, PostgreSQL): each a goroutine that owns its output channel,
// ended by Close, which waits for them. The zero value has none and is
// open.
type subscriptions struct {
	// mu guards closed against wg.Add, and keeps Close waiting while
	// whileOpen or subscribe sets something up.
	mu      sync.Mutex
	closed  bool
	closing chan struct{} // made by the first subscribe, closed by closeAll
	wg      sync.WaitGroup
}

// handOnFunc hands on a subscription's messages to out until ctx ends,
// which it does at Close at the latest, and answers them before it
// returns; out is closed after.
type handOnFunc func(ctx context.Context, out chan<- *message.Message)

// whileOpen runs f, unless the subscriber is closed, with Close waiting
// until it returns: what f sets up (a connection dialled again, a group
// created) is never left behind by a Close that has finished.
func (l *subscriptions) whileOpen(f func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errSubscriberClosed
	}
	return f()
}

// subscribe runs open as whileOpen does, then hands on messages with the
// handOnFunc it returns, in a goroutine of its own that Close waits for,
// until ctx ends or Close.
func (l *subscriptions) subscribe(ctx context.Context, open func() (handOnFunc, error)) (<-chan *message.Message, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errSubscriberClosed
	}
	handOn, err := open()
	if err != nil {
		return nil, err
	}
	if l.closing == nil {
		l.closing = make(chan struct{})
	}
	closing := l.closing
	out := make(chan *message.Message)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		handOn(ctx, out)
	}()
	return out, nil
}

// closeAll ends every subscription and waits for them to return, their
// messages answered. It reports whether it closed the subscriber: false
// when an earlier call did, or is doing so, and it returns at once.
func (l *subscriptions) closeAll() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	if l.closing != nil {
		close(l.closing)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return true
}

// answerSlots bound the messages a subscription has handed on and not
// seen answered to its Config.InFlight, one slot each, and answer them:
// inline when InFlight is 1 or less, so that the next message is read
// only once the last one is answered, else each in a goroutine of its
// own. Only the subscription's goroutine takes slots.
type answerSlots struct {
	slots     chan struct{}
	inline    bool
	answering sync.WaitGroup
}

// newAnswerSlots are the slots of a subscription handing on up to
// inFlight messages at once, at least one.
func newAnswerSlots(inFlight int) *answerSlots {
	return &answerSlots{slots: make(chan struct{}, max(1, inFlight)), inline: inFlight <= 1}
}

// take waits for a free slot, for the next message to hand on; false if
// ctx ends first.
func (a *answerSlots) take(ctx context.Context) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// free is how many slots are free: as many as can be taken at once with
// takeFree, since only the caller takes them.
func (a *answerSlots) free() int {
	return cap(a.slots) - len(a.slots)
}

// takeFree takes a slot that free has counted.
func (a *answerSlots) takeFree() {
	a.slots <- struct{}{}
}

// release frees a slot taken for a message that was not handed on, or
// was answered already.
func (a *answerSlots) release() {
	<-a.slots
}

// answer runs answer for a message handed on, which waits for the
// consumer's answer and passes it on, then frees the message's slot.
func (a *answerSlots) answer(answer func()) {
	if a.inline {
		answer()
		a.release()
		return
	}
	a.answering.Go(func() {
		defer a.release()
		answer()
	})
}

// wait waits until every answer under way is passed on.
func (a *answerSlots) wait() {
	a.answering.Wait()
}
