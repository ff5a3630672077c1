package cli

import (
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/profilerpc"
	"github.com/outboxd/outboxd/internal/worker"
)

// newProfileClient returns the API's client of the profile service and sets
// it as acfg.Profiles, or returns nil, leaving the route to answer 501, when
// the broker has no request–reply. The client connects when its Run runs.
func newProfileClient(bcfg broker.Config, timeout time.Duration, reg prometheus.Registerer, acfg *api.Config) (*profilerpc.Client, error) {
	if !profilerpc.Supported(bcfg.Kind) {
		acfg.Logger.Info("GET /v1/users/{id}/profile answers 501: request–reply needs BROKER=nats or amqp", "broker", string(bcfg.Kind))
		return nil, nil
	}
	c, err := profilerpc.NewClient(bcfg, profilerpc.ClientConfig{Timeout: timeout, Logger: acfg.Logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	acfg.Profiles = c
	return c, nil
}

// profileServices is the profile service the worker runs beside its
// profile handler, when it runs that handler and the broker has
// request–reply.
func profileServices(pool *pgxpool.Pool, bcfg broker.Config, wcfg worker.Config) ([]worker.Service, error) {
	wcfg = wcfg.WithDefaults()
	if !slices.Contains(wcfg.Handlers, worker.HandlerProfile) {
		return nil, nil
	}
	if !profilerpc.Supported(bcfg.Kind) {
		wcfg.Logger.Info("profile.get requests are not served: request–reply needs BROKER=nats or amqp", "broker", string(bcfg.Kind))
		return nil, nil
	}
	srv, err := profilerpc.NewServer(pool, bcfg, profilerpc.ServerConfig{Logger: wcfg.Logger})
	if err != nil {
		return nil, err
	}
	return []worker.Service{srv}, nil
}
