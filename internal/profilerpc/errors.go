package profilerpc

import (
	"errors"
	"fmt"

	"github.com/outboxd/outboxd/internal/broker"
)

// ErrUnsupportedBroker is returned by NewClient and NewServer for a broker
// without request–reply (see Supported). The errors of Client.Profile are
// package profile's: profile.ErrNotFound, ErrTimeout, ErrUnavailable and
// ErrServiceFailed.
var ErrUnsupportedBroker = errors.New("request–reply needs BROKER=nats or amqp")

// Supported reports whether request–reply works on brokers of kind: NATS
// and RabbitMQ. The package documentation says why the others do not.
func Supported(kind broker.Kind) bool {
	return kind == broker.KindNATS || kind == broker.KindAMQP
}

func checkSupported(kind broker.Kind) error {
	if !Supported(kind) {
		return fmt.Errorf("BROKER=%s: %w", kind, ErrUnsupportedBroker)
	}
	return nil
}
