package broker

import (
	"errors"
	"strings"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// IsPermanent reports whether err, returned by a publisher of kind, means
// the broker rejected the message itself for good: sending it again can
// never succeed, so the caller should set it aside (dead-letter it) and go
// on with the others. It is false for everything that may pass on a retry:
// connection loss, timeouts, a broker that is down or overloaded, a closed
// publisher, and errors it does not know.
//
// Known permanent rejections: a topic no broker can carry (ErrInvalidTopic);
// on NATS a message over the server's max_payload or the stream's
// max_msg_size, or an invalid subject; on Kafka a record over
// Producer.MaxMessageBytes or rejected by the broker as too large, corrupt
// or invalid; on postgres a row PostgreSQL refuses as invalid data (SQLSTATE
// class 22) or too large (54000). RabbitMQ answers an oversized message by
// closing the channel, and its nacks (a full queue that rejects publishes)
// may pass later; Redis refuses a message only for its stream key (one of
// another type), which an operator can fix: so on those kinds only
// ErrInvalidTopic is permanent.
func IsPermanent(kind Kind, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidTopic) {
		return true
	}
	switch kind {
	case KindNATS:
		return natsPermanent(err)
	case KindKafka:
		return kafkaPermanent(err)
	case KindPostgres:
		return postgresPermanent(err)
	}
	return false
}

func natsPermanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) {
		return true
	}
	var apiErr *nats.APIError
	return errors.As(err, &apiErr) &&
		apiErr.ErrorCode == nats.ErrorCode(jetstream.JSErrCodeStreamMessageExceedsMaximum)
}

func kafkaPermanent(err error) bool {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		switch kerr {
		case sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidMessage, sarama.ErrInvalidMessageSize,
			sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidRecord:
			return true
		}
		return false
	}
	// sarama refuses an oversized record before sending it with a
	// ConfigurationError, a plain string type shared with real
	// configuration mistakes: only its wording tells them apart.
	var cerr sarama.ConfigurationError
	return errors.As(err, &cerr) && strings.Contains(string(cerr), "Producer.MaxMessageBytes")
}

func postgresPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || pgErr.Code == "54000"
}
