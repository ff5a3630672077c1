// Package deadletter keeps the messages a worker handler gave up on, in the
// dead_letters table, and lets an operator list, replay and purge them
// (`outboxd dlq list|replay|purge`).
//
// A dead letter holds the message as it arrived (id, topic, payload,
// metadata), the handler that failed, its last error and how many attempts
// it made. Replay puts the message back into the outbox with the same
// message id, so the relay publishes it again to every consumer group: the
// handler that failed gets another chance, and the handlers that already
// processed it recognise the id in their inbox and do nothing.
//
// Dead letters of the relay (messages the broker refused) live in
// outbox_dead_letters and are handled by package relay.
package deadletter
