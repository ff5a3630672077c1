package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsStartTimeoutDefault bounds an embedded server's start when ctx has no
// deadline.
const natsStartTimeoutDefault = 10 * time.Second

// StartEmbeddedNATS starts an in-process NATS server with JetStream on,
// keeping its streams and consumers in dir, and listening on a free port of
// 127.0.0.1: never 4222 or any other well-known port, so it cannot clash with
// a NATS already running. ctx bounds the start only. It returns the URL to
// give Config.URL and stop, which shuts the server down and waits for it;
// stop may be called more than once.
func StartEmbeddedNATS(ctx context.Context, dir string) (url string, stop func(), err error) {
	return StartEmbeddedNATSOn(ctx, dir, -1)
}

// StartEmbeddedNATSOn is StartEmbeddedNATS on a chosen port of 127.0.0.1
// (zero or negative picks a free one). Restarting a stopped server on the
// port of its URL and on the same dir brings back its streams and consumers,
// and the clients reconnect by themselves: this is how tests take the broker
// away for a while.
func StartEmbeddedNATSOn(ctx context.Context, dir string, port int) (url string, stop func(), err error) {
	if dir == "" {
		return "", nil, errors.New("embedded NATS: a store directory is required")
	}
	if port <= 0 {
		// nats-server reads port 0 as its default, 4222.
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "outboxd-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return "", nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
	}
	wait := natsStartTimeoutDefault
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	if !ns.ReadyForConnections(wait) || !ns.JetStreamEnabled() {
		stop()
		return "", nil, fmt.Errorf("embedded NATS: not ready within %s (is port %d free?)", wait.Round(time.Millisecond), port)
	}
	return ns.ClientURL(), stop, nil
}
