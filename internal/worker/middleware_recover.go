package worker

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// recoverPanic turns a panic in the handler into an error of the attempt,
// so one bad message cannot crash the worker; it is retried and
// dead-lettered like any failure. The stack goes to the log, not into the
// error stored with the dead letter.
func recoverPanic(logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) (out []*message.Message, err error) {
			defer func() {
				if r := recover(); r != nil {
					ctx := msg.Context()
					loggerFrom(ctx, logger).ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					out, err = nil, fmt.Errorf("handler panicked: %v", r)
				}
			}()
			return h(msg)
		}
	}
}
