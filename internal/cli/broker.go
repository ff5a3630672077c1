package cli

import (
	"cmp"
	"log/slog"

	"github.com/outboxd/outboxd/internal/broker"
)

// BrokerFlags select the message broker.
type BrokerFlags struct {
	Broker    string `name:"broker" env:"BROKER" default:"nats" enum:"nats,amqp,redis,kafka,postgres" help:"Broker: nats (JetStream), amqp (RabbitMQ), redis (Streams), kafka, postgres (watermill-sql)."`
	BrokerURL string `name:"broker-url" env:"BROKER_URL" help:"The broker's address; defaults to its usual local address (DATABASE_URL for postgres)."`
}

func (f BrokerFlags) config(g *Globals, logger *slog.Logger) (broker.Config, error) {
	kind, err := broker.ParseKind(f.Broker)
	if err != nil {
		return broker.Config{}, err
	}
	url := f.BrokerURL
	if kind == broker.KindPostgres {
		url = cmp.Or(url, g.DatabaseURL)
	}
	return broker.Config{Kind: kind, URL: url, Logger: logger}, nil
}
