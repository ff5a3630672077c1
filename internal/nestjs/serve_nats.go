package nestjs

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// natsListener takes requests on the core NATS subject
// {"cmd":"get_user_by_id"} in QueueGroup and replies on each request's
// reply subject (its inbox), as ServerNats does.
type natsListener struct {
	nc  *nats.Conn
	sub *nats.Subscription
	ws  *workers
}

func listenNATS(ctx context.Context, cfg Config, serve func([]byte) replyPacket) (*natsListener, error) {
	nc, err := connectNATS(ctx, cfg, "nestjs profile service")
	if err != nil {
		return nil, err
	}
	l := &natsListener{nc: nc, ws: newWorkers(cfg.Concurrency)}
	log := cfg.Logger.With("component", "nestjs.service", "transport", string(TransportNATS))
	l.sub, err = nc.QueueSubscribe(PatternGetUserByID, QueueGroup, func(m *nats.Msg) {
		if m.Reply == "" {
			log.Warn("NestJS request without a reply subject: nobody to answer", "subject", m.Subject)
			return
		}
		l.ws.do(func() {
			if err := m.Respond(encode(serve(m.Data), true)); err != nil {
				log.Warn("NestJS reply not sent", "error", err)
			}
		})
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", PatternGetUserByID, err)
	}
	// SUB goes out asynchronously: a request sent right after start-up
	// would otherwise find nobody.
	flushCtx, cancel := context.WithTimeout(ctx, natsFlushTimeout)
	defer cancel()
	if err := nc.FlushWithContext(flushCtx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("wait for NATS to register the subscription: %w", err)
	}
	return l, nil
}

func (l *natsListener) stop() error {
	err := l.sub.Unsubscribe()
	l.ws.wait()
	l.nc.Close()
	return err
}
