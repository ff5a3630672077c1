package broker

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// handOnBatch hands on the messages of rows in offset order, up to
// inFlight of them unanswered at once, each until it is acked: a nacked
// one, or one not answered within ackDeadline, is handed on again (a copy)
// after postgresResendInterval, keeping its slot, while the others go on.
// It returns once every message is acked, or once ctx ends and the
// answers under way are in, with the length of the prefix of rows acked.
func (s *postgresSubscriber) handOnBatch(ctx context.Context, rows []wmsql.Row, fields watermill.LogFields, out chan<- *message.Message) int {
	slots := newAnswerSlots(s.inFlight)
	// Each row's answer alone sets its entry, read once they are all in.
	acked := make([]bool, len(rows))
	for i, row := range rows {
		if !slots.take(ctx) {
			break
		}
		// Handed on here, so that the rows go in offset order; their
		// answers, and the nacked ones handed on again, are awaited
		// beside.
		h := s.handOnOnce(ctx, row.Msg, out)
		if ctx.Err() != nil && !h.taken {
			h.cancel()
			slots.release()
			break
		}
		slots.answer(func() { acked[i] = s.settle(ctx, h, fields, out) })
	}
	slots.wait()
	n := 0
	for n < len(acked) && acked[n] {
		n++
	}
	return n
}

// handing is a message handed on once, with its context of its own.
type handing struct {
	msg    *message.Message
	ctx    context.Context
	cancel context.CancelFunc
	// taken tells that the consumer took msg before its context ended.
	taken bool
}

// handOnOnce hands msg on with a context of its own, which ends after
// ackDeadline or once msg is answered, unless ctx ends or the deadline
// passes before the consumer takes it.
func (s *postgresSubscriber) handOnOnce(ctx context.Context, msg *message.Message, out chan<- *message.Message) handing {
	h := handing{msg: msg}
	if s.ackDeadline > 0 {
		h.ctx, h.cancel = context.WithTimeout(ctx, s.ackDeadline)
	} else {
		h.ctx, h.cancel = context.WithCancel(ctx)
	}
	msg.SetContext(h.ctx)
	select {
	case out <- msg:
		h.taken = true
	case <-h.ctx.Done():
	}
	return h
}

// acked waits for h's answer and ends its context: false when it was
// nacked, not answered in time, or not taken.
func (h handing) acked() bool {
	defer h.cancel()
	if !h.taken {
		return false
	}
	select {
	case <-h.msg.Acked():
		return true
	case <-h.msg.Nacked():
		return false
	case <-h.ctx.Done():
		// An ack that came just as the time was up counts.
		select {
		case <-h.msg.Acked():
			return true
		default:
			return false
		}
	}
}

// settle waits for h's message to be acked, reporting true, handing it on
// again each time it is not, until ctx ends, reporting false.
func (s *postgresSubscriber) settle(ctx context.Context, h handing, fields watermill.LogFields, out chan<- *message.Message) bool {
	for {
		if h.acked() {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.logger.Debug("Message nacked or not answered in time, handing it on again", fields.Add(watermill.LogFields{"message_uuid": h.msg.UUID}))
		pause(ctx, postgresResendInterval)
		if ctx.Err() != nil {
			return false
		}
		h = s.handOnOnce(ctx, h.msg.Copy(), out)
	}
}
