package profilerpc

import (
	"errors"
	"fmt"

	"github.com/outboxd/outboxd/internal/broker"
)

// Errors of Client.Profile, to be told apart with errors.Is.
var (
	// ErrNotFound means the service answered that the user has no profile:
	// no user has the id, or the worker has not created the profile yet.
	ErrNotFound = errors.New("profile not found")
	// ErrTimeout means no reply arrived within ClientConfig.Timeout: no
	// profile service is running, or it is too slow.
	ErrTimeout = errors.New("no reply from the profile service in time")
	// ErrUnavailable means the request could not be sent: the Client is not
	// connected to the broker (yet, or any more).
	ErrUnavailable = errors.New("profile service unreachable")
	// ErrServiceFailed means the service answered with an error, such as a
	// database that does not answer.
	ErrServiceFailed = errors.New("the profile service failed")
	// ErrUnsupportedBroker is returned by NewClient and NewServer for a
	// broker without request–reply (see Supported).
	ErrUnsupportedBroker = errors.New("request–reply needs BROKER=nats or amqp")
)

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
