package profilerpc

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/internal/broker"
)

// InFlight is the number of requests waiting for a reply.
func (c *Client) InFlight() int { return c.mux.inFlight() }

// RawEnd is one side's transport without the component, for tests that
// play the other side by hand: a service that answers late, or a client
// that names a reply topic of its choosing.
type RawEnd struct{ t *transport }

// DialRaw connects a transport as a Server (server) or a Client does.
func DialRaw(ctx context.Context, bcfg broker.Config, server bool) (*RawEnd, error) {
	r := roleClient
	if server {
		r = roleServer
	}
	t, err := newTransport(ctx, bcfg, r, 1)
	if err != nil {
		return nil, err
	}
	return &RawEnd{t: t}, nil
}

// Publish publishes msgs to topic.
func (e *RawEnd) Publish(topic string, msgs ...*message.Message) error {
	return e.t.pub.Publish(topic, msgs...)
}

// Subscribe subscribes to topic: as the services share requests on the
// server side, as a Client's own reply queue on the client side.
func (e *RawEnd) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return e.t.subscribe(ctx, topic)
}

// Close disconnects.
func (e *RawEnd) Close() error { return e.t.Close() }

// Reply publishes r as the reply to req, the way a Server's backend does.
func (e *RawEnd) Reply(req *message.Message, r ProfileReply) error {
	msg, err := requestreply.BackendPubsubJSONMarshaler[ProfileReply]{}.MarshalReply(
		requestreply.BackendOnCommandProcessedParams[ProfileReply]{HandlerResult: r})
	if err != nil {
		return err
	}
	msg.Metadata.Set(requestreply.OperationIDMetadataKey, req.Metadata.Get(requestreply.OperationIDMetadataKey))
	topic, err := replyTopicOf(req)
	if err != nil {
		return err
	}
	return e.t.pub.Publish(topic, msg)
}
