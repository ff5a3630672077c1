// Package profilerpc asks the profile service for a user's profile over the
// message broker and waits for the answer: request–reply on the same broker
// that carries the events, built on Watermill's requestreply component
// (github.com/ThreeDotsLabs/watermill/components/requestreply).
//
// Events such as user.created are fire-and-forget and fan out to every
// consumer group. A profile.get request is different: one profile service
// instance answers it, and the asker waits for that answer with a deadline.
//
//	API instance (Client)                           worker (Server)
//	  profile.get {"user_id"}  ──► request queue ──►  SELECT profiles
//	  reply topic of this instance ◄─────────────────  {"found","profile"}
//
// The Client sends the request as a CQRS command; Watermill's component puts
// an operation id in its metadata and the Server's reply carries it back.
// Each Client (one per API process) has its own reply topic,
// profile.reply.<random id>, named in the request's reply_to metadata, so
// replies never go to another API instance. Within the instance, each
// request in flight listens for its own operation id: the one broker
// subscription of the instance hands each reply to the request waiting for
// it (replyMux), so a request costs no subscription of its own on the broker.
//
// A request waits at most ClientConfig.Timeout (2 s by default). A reply that
// arrives later, because the service was slow or a request sat in a queue,
// finds nobody waiting and is dropped with a debug line and a count in
// outboxd_profile_client_late_replies_total. Requests are not durable: one
// that no service takes in time simply times out, and a service does not
// keep working on one past its time (on RabbitMQ the queue expires it; the
// Server bounds its lookup by the time the request has left).
//
// # Brokers
//
// Request–reply works on NATS and RabbitMQ (Supported):
//
//   - NATS: core NATS subjects on the same server as the JetStream streams,
//     not a stream. A request is worthless after its deadline, so storing it
//     would only replay stale requests after an outage. Services share
//     requests through the queue group outboxd-profile; the reply subject is
//     the instance's own. Nothing is provisioned and nothing is left behind.
//   - RabbitMQ: a durable queue profile.get on the default exchange, shared by
//     the services, holding transient messages that expire with their
//     request's remaining time; each Client has an exclusive, auto-deleted
//     reply queue, removed by the broker when the Client's connection ends.
//
// Redis Streams, Kafka and PostgreSQL (watermill-sql) are logs: every reply
// topic would be a stream, Kafka topic or table that is never removed, and
// watermill-sql polls, so a round trip costs its poll interval. Their
// deployments run without the profile route (it answers 501).
//
// # Usage
//
// On the API side:
//
//	client, err := profilerpc.NewClient(brokerCfg, profilerpc.ClientConfig{Timeout: 2 * time.Second})
//	go client.Run(ctx)                         // connects, retrying until the broker answers
//	p, err := client.Profile(ctx, userID)       // profile.ErrNotFound, ErrTimeout, ErrUnavailable, ErrServiceFailed
//
// On the worker side, the Server adds its handler to a Watermill router
// (worker.Config.Services does this):
//
//	srv, err := profilerpc.NewServer(pool, brokerCfg, profilerpc.ServerConfig{})
//	err = srv.AddHandlers(ctx, router)
//	... router.Run(ctx) ...
//	srv.Close()
package profilerpc
