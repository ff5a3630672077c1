package nestjs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// rmqRedialWait is how long the listener waits between attempts to
// reconnect to RabbitMQ.
const rmqRedialWait = time.Second

// rmqListener consumes the request queue (Config.RequestQueue, declared as
// a NestJS client declares it) and replies to each request's replyTo
// (RabbitMQ's direct reply-to) with its correlationId, as ServerRMQ does:
// the reply's body has no id. A request is acked once answered, so one in
// hand when the worker dies is answered by another. A lost connection is
// dialled again every rmqRedialWait until stop.
type rmqListener struct {
	cfg    Config
	serve  func([]byte) replyPacket
	logger *slog.Logger
	tag    string
	ws     *workers
	stopCh chan struct{}
	done   chan struct{}

	mu sync.Mutex
	ch *amqp091.Channel // the channel consuming now
}

func listenRMQ(_ context.Context, cfg Config, serve func([]byte) replyPacket, logger *slog.Logger) (*rmqListener, error) {
	l := &rmqListener{
		cfg:    cfg,
		serve:  serve,
		logger: logger,
		tag:    "outboxd-nestjs-profile-" + randomHex(6),
		ws:     newWorkers(cfg.Concurrency),
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
	conn, deliveries, err := l.consume()
	if err != nil {
		return nil, err
	}
	go l.run(conn, deliveries)
	return l, nil
}

// consume connects, declares the request queue and consumes it, at most
// Concurrency unacked requests at a time.
func (l *rmqListener) consume() (*amqp091.Connection, <-chan amqp091.Delivery, error) {
	conn, err := rmqDial(l.cfg.URL, "nestjs profile service")
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = rmqDeclare(ch, l.cfg.RequestQueue)
	}
	if err == nil {
		err = ch.Qos(l.cfg.Concurrency, 0, false)
	}
	var deliveries <-chan amqp091.Delivery
	if err == nil {
		deliveries, err = ch.Consume(l.cfg.RequestQueue, l.tag, false, false, false, false, nil)
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("consume RabbitMQ queue %s: %w", l.cfg.RequestQueue, err)
	}
	l.mu.Lock()
	l.ch = ch
	l.mu.Unlock()
	return conn, deliveries, nil
}

// run answers deliveries until they end, then reconnects, until stop.
func (l *rmqListener) run(conn *amqp091.Connection, deliveries <-chan amqp091.Delivery) {
	defer close(l.done)
	for {
		l.mu.Lock()
		ch := l.ch
		l.mu.Unlock()
		for d := range deliveries {
			l.ws.do(func() { l.answer(ch, d) })
		}
		// The replies in hand go out on this connection.
		l.ws.wait()
		_ = conn.Close()
		for {
			select {
			case <-l.stopCh:
				return
			default:
			}
			var err error
			if conn, deliveries, err = l.consume(); err == nil {
				select {
				case <-l.stopCh:
					// stop may have cancelled the channel before this one.
					_ = conn.Close()
					return
				default:
				}
				l.logger.Info("consuming NestJS requests again")
				break
			}
			l.logger.Warn("RabbitMQ connection lost; dialling again", "error", err, "wait", rmqRedialWait)
			select {
			case <-l.stopCh:
				return
			case <-time.After(rmqRedialWait):
			}
		}
	}
}

// answer replies to one request and acks it.
func (l *rmqListener) answer(ch *amqp091.Channel, d amqp091.Delivery) {
	if d.ReplyTo == "" {
		l.logger.Warn("NestJS request without replyTo: nobody to answer; dropped", "queue", l.cfg.RequestQueue)
		_ = d.Ack(false)
		return
	}
	reply := encode(l.serve(d.Body), false)
	ctx, cancel := context.WithTimeout(context.Background(), rmqDialTimeout)
	defer cancel()
	err := ch.PublishWithContext(ctx, "", d.ReplyTo, false, false, amqp091.Publishing{
		ContentType:   "application/json",
		CorrelationId: d.CorrelationId,
		Body:          reply,
	})
	if err != nil {
		// The client waits in vain; a redelivery would answer too late.
		l.logger.Warn("NestJS reply not sent", "error", err)
	}
	_ = d.Ack(false)
}

func (l *rmqListener) stop() error {
	close(l.stopCh)
	l.mu.Lock()
	ch := l.ch
	l.mu.Unlock()
	var err error
	if ch != nil {
		// Ends the deliveries once the ones sent are handed over.
		if cerr := ch.Cancel(l.tag, false); cerr != nil && !errors.Is(cerr, amqp091.ErrClosed) {
			err = cerr
		}
	}
	<-l.done
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
