package nestjs

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/internal/broker"
)

// natsFlushTimeout bounds waiting for the NATS server to answer a flush.
const natsFlushTimeout = 10 * time.Second

// natsSender publishes each event on the core NATS subject named by its
// pattern, as ClientNats.emit does, and waits for the server to have it
// (a flush). Core NATS keeps nothing: subscribers listening then get it.
type natsSender struct {
	nc *nats.Conn
}

func newNATSSender(ctx context.Context, cfg Config) (*natsSender, error) {
	nc, err := connectNATS(ctx, cfg, "nestjs emitter")
	if err != nil {
		return nil, err
	}
	return &natsSender{nc: nc}, nil
}

// connectNATS connects as package broker does: reconnecting forever, each
// disconnection logged, the URL kept out of errors.
func connectNATS(ctx context.Context, cfg Config, name string) (*nats.Conn, error) {
	return broker.ConnectNATS(ctx, broker.Config{Kind: broker.KindNATS, URL: cfg.URL, Logger: cfg.Logger}, name)
}

func (s *natsSender) send(ctx context.Context, o outgoing) error {
	m := nats.NewMsg(o.pattern)
	m.Data = o.packet()
	// A header the NestJS handler can read from its NatsContext, and the
	// id JetStream deduplicates by if a stream captures the subject.
	m.Header.Set(nats.MsgIdHdr, o.messageID)
	if err := s.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("publish to NATS subject %s: %w", o.pattern, err)
	}
	// Publish only buffers; a message buffered while disconnected would be
	// lost with the process.
	// nats.go insists on a deadline.
	ctx, cancel := context.WithTimeout(ctx, natsFlushTimeout)
	defer cancel()
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("flush to NATS: %w", err)
	}
	return nil
}

func (s *natsSender) close() error {
	s.nc.Close()
	return nil
}
