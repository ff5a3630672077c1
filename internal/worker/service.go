package worker

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Service is a set of handlers that runs in the worker's router beside the
// event handlers, such as the profile service answering profile.get
// requests (*profilerpc.Server). The worker's middleware (retries, dead
// letters, inbox) is for events and is not applied to a Service's
// handlers; a Service brings its own.
type Service interface {
	// AddHandlers connects to the broker and adds the service's handlers to
	// r. The worker calls it once, in Run, before the router starts.
	AddHandlers(ctx context.Context, r *message.Router) error
	// Close releases what AddHandlers opened. The worker calls it after
	// the router has stopped, or when Run fails after AddHandlers.
	Close() error
}
