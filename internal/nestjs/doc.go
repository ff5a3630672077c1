// Package nestjs speaks NestJS microservices' wire formats, so that
// existing NestJS services keep their decorators and take outboxd's
// guarantees: their @EventPattern handlers receive outboxd's events, and
// their ClientProxy.send({ cmd: 'get_user_by_id' }, { userId }) is answered
// by outboxd's profile service.
//
//	outbox ─► relay ─► broker ─► worker, handler nestjs (Emitter) ─► NestJS transport ─► @EventPattern('user_created')
//	NestJS ClientProxy.send ─► NestJS transport ─► worker, profile service (Service) ─► reply
//
// # Events
//
// The Emitter delivers each message of a topic in Config.Events as the
// NestJS event its pattern names, with the message's payload as data:
// user.created becomes the event user_created with data {user_id, email,
// name, created_at}. The worker's nestjs handler calls it, so the delivery
// has the handler's consumer group (outboxd-nestjs), inbox, retries, dead
// letters and metrics. Per transport, as NestJS's own clients emit:
//
//   - NATS (core, not JetStream): {"pattern": P, "data": D} on subject P,
//     flushed to the server. Only subscribers listening then get it.
//   - RabbitMQ: {"pattern": P, "data": D} to the consumers' queue
//     (Config.Queue, declared durable as NestJS declares it) through the
//     default exchange, persistent and mandatory; Emit returns once RabbitMQ
//     confirms it (publisher confirms), and a message no queue took is an
//     error. The queue keeps events while the consumers are down.
//   - Redis (PUB/SUB, not streams): PUBLISH P {"pattern": P, "data": D}.
//     Only subscribers listening then get it.
//   - Kafka: topic P, value D with no envelope, key the outbox key; Emit
//     returns once every in-sync replica has it. Kafka refuses a topic whose
//     name equals another's once '.' and '_' are folded (user.created and
//     user_created): the Emitter refuses such a pattern at start and names
//     the mapping to use instead.
//
// # Requests
//
// The Service answers {"pattern": {"cmd":"get_user_by_id"}, "data":
// {"userId": ...}, "id": ...} with {"response": profile, "isDisposed": true,
// "id": ...}, the profile as GET /v1/users/{id}/profile returns it, or with
// {"err": {status, message, code}, "isDisposed": true, "id": ...}: user not
// found, profile not made yet (retry), malformed request (naming the
// problem), lookup failed (retry). NestJS accepts no other key in a reply,
// and one without isDisposed never completes. On NATS it listens on subject
// {"cmd":"get_user_by_id"} in queue group QueueGroup and replies to the
// request's inbox; on RabbitMQ it consumes Config.RequestQueue, a queue of
// its own, and replies to replyTo with the correlationId and no id in the
// body; on Redis it listens on channel {"cmd":"get_user_by_id"} and replies
// on {"cmd":"get_user_by_id"}.reply. Kafka requests are not answered
// (ServesRequests).
package nestjs
