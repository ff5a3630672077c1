package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/nestjs"
	"github.com/outboxd/outboxd/internal/worker"
)

// NestJSFlags configure the nestjs handler and the profile service's
// answers to NestJS clients; part of WorkerFlags.
type NestJSFlags struct {
	NestJSBroker       string `name:"nestjs-broker" env:"NESTJS_BROKER" help:"NestJS transport of the nestjs handler and of NestJS profile requests: nats, amqp (RMQ), redis or kafka; unset: none."`
	NestJSURL          string `name:"nestjs-url" env:"NESTJS_URL" help:"The NestJS transport's address; defaults to its usual local address."`
	NestJSQueue        string `name:"nestjs-queue" env:"NESTJS_QUEUE" help:"RabbitMQ: the queue of the NestJS service consuming the events (its options.queue)."`
	NestJSRequestQueue string `name:"nestjs-request-queue" env:"NESTJS_REQUEST_QUEUE" help:"RabbitMQ: the queue NestJS clients send profile requests to (never NESTJS_QUEUE); unset: none answered on RabbitMQ."`
	NestJSEvents       string `name:"nestjs-events" env:"NESTJS_EVENTS" default:"user.created=user_created" help:"The topics the nestjs handler delivers, as topic=pattern pairs."`
}

func (f NestJSFlags) validate(handlers []string) error {
	runs := slices.Contains(handlers, worker.HandlerNestJS)
	if f.NestJSBroker == "" {
		if runs {
			return fmt.Errorf("--handlers names %s: set NESTJS_BROKER (nats, amqp, redis or kafka)", worker.HandlerNestJS)
		}
		return nil
	}
	var errs []error
	transport, err := nestjs.ParseTransport(f.NestJSBroker)
	if err != nil {
		errs = append(errs, fmt.Errorf("NESTJS_BROKER=%s: %w", f.NestJSBroker, err))
	}
	if _, err := nestjs.ParseEvents(f.NestJSEvents); err != nil {
		errs = append(errs, fmt.Errorf("NESTJS_EVENTS=%s: %w", f.NestJSEvents, err))
	}
	if transport == nestjs.TransportRMQ {
		if runs && f.NestJSQueue == "" {
			errs = append(errs, errors.New("NESTJS_QUEUE: the nestjs handler on NESTJS_BROKER=amqp needs the consumers' queue"))
		}
		if f.NestJSRequestQueue != "" && f.NestJSRequestQueue == f.NestJSQueue {
			errs = append(errs, fmt.Errorf("NESTJS_REQUEST_QUEUE=%s is NESTJS_QUEUE: profile requests need a queue of their own", f.NestJSRequestQueue))
		}
	}
	return errors.Join(errs...)
}

// nestjsServices sets wcfg.NestJS to the nestjs handler's emitter when the
// worker runs that handler, and returns it with the profile service for
// NestJS clients when the worker runs the profile handler and the
// transport has requests: both run in the worker as Services.
func nestjsServices(pool *pgxpool.Pool, bcfg broker.Config, f NestJSFlags, wcfg *worker.Config) ([]worker.Service, error) {
	if f.NestJSBroker == "" {
		return nil, nil
	}
	transport, err := nestjs.ParseTransport(f.NestJSBroker)
	if err != nil {
		return nil, fmt.Errorf("NESTJS_BROKER=%s: %w", f.NestJSBroker, err)
	}
	events, err := nestjs.ParseEvents(f.NestJSEvents)
	if err != nil {
		return nil, fmt.Errorf("NESTJS_EVENTS=%s: %w", f.NestJSEvents, err)
	}
	cfg := nestjs.Config{
		Transport: transport, URL: f.NestJSURL, Queue: f.NestJSQueue, RequestQueue: f.NestJSRequestQueue,
		Events: events, Logger: wcfg.Logger,
	}.WithDefaults()
	bcfg = bcfg.WithDefaults()
	if transport == nestjs.TransportKafka && bcfg.Kind == broker.KindKafka && bcfg.URL == cfg.URL {
		// The relay publishes outboxd's topics on the same cluster.
		for _, r := range events {
			cfg.KafkaTopicsInUse = append(cfg.KafkaTopicsInUse, r.Topic)
		}
	}
	var services []worker.Service
	handlers := wcfg.WithDefaults().Handlers
	if slices.Contains(handlers, worker.HandlerNestJS) {
		em, err := nestjs.NewEmitter(cfg)
		if err != nil {
			return nil, fmt.Errorf("NESTJS_EVENTS=%s: %w", f.NestJSEvents, err)
		}
		wcfg.NestJS = em
		services = append(services, em)
	}
	switch {
	case !slices.Contains(handlers, worker.HandlerProfile):
	case !nestjs.ServesRequests(transport):
		cfg.Logger.Info("NestJS profile requests are not answered: they need NESTJS_BROKER=nats, amqp or redis", "nestjs_broker", f.NestJSBroker)
	case transport == nestjs.TransportRMQ && f.NestJSRequestQueue == "":
		cfg.Logger.Info("NestJS profile requests are not answered on RabbitMQ: NESTJS_REQUEST_QUEUE is unset")
	default:
		svc, err := nestjs.NewService(pool, cfg)
		if err != nil {
			return nil, err
		}
		services = append(services, svc)
	}
	return services, nil
}
