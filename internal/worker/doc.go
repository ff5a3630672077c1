// Package worker consumes user.created events and performs their effects: a
// welcome email, a profile row and an audit record.
//
// A Watermill Router runs one handler per effect, each on its own
// subscriber in its own durable consumer group (outboxd-email,
// outboxd-profile, outboxd-audit): every handler sees every event, and a
// slow or failing handler never holds back the others.
//
// Effects happen once per message although the broker delivers at least
// once. profile and audit write their row and an inbox row in one
// transaction (package outbox/inbox), so a redelivery changes nothing. email
// cannot share a transaction with an SMTP server: it checks the inbox before
// sending and records the mail after, and its Message-ID is derived from the
// message id, so the rare repeat (a crash between send and record) is
// recognisable.
//
// Each handler holds at most Config.Held messages unacknowledged
// (Config.Concurrency, more for the handlers that batch) and works on them
// at once, but never on two messages of one key (metadata key, the user's
// id): a message waits, in arrival order, until the handler is done with
// the one of its key before it, retries and dead letter included.
// How many messages a transport hands over at once is its own setting.
//
// profile and audit write in batches: each message's attempt, inside the
// middleware below, hands its effect to its handler's batcher and waits for
// its own outcome. A batch (up to Config.BatchSize messages, waiting at most
// Config.BatchWait, and not at all once it holds every attempt in flight) is
// one inbox.ProcessSet transaction, its effects written by one statement
// for the whole batch; when that statement fails, each message is written
// again alone in a savepoint of its own, so a failing message fails alone
// and goes through retries and dead letters like any other. Batches grow only when the transport hands over several
// messages at once.
//
// The nestjs handler (HandlerNestJS, run only when named) delivers events
// to NestJS consumers through Config.NestJS (package internal/nestjs), one
// router handler per topic it delivers, all in consumer group
// outboxd-nestjs. Like email it checks the inbox before the delivery and
// records it after.
//
// Each handler runs behind this middleware, outermost first:
//
//	release key  once the last attempt returns, the next message of its key may go
//	correlation  correlation_id from the metadata into ctx and logs
//	trace        a consumer span, child of the traceparent in the metadata
//	dead letter  after the last attempt, store the message in dead_letters and ack it
//	retry        exponential backoff, MaxRetries times, skipped for permanent errors
//	metrics      per attempt: handled, failed, retried, duration
//	recover      a panic becomes an error of the attempt
//	timeout      each attempt's context ends after HandlerTimeout
//
// A payload that does not decode is a poison message: it is dead-lettered at
// its first attempt instead of burning retries. A message whose context ends
// (shutdown, or the broker's ack deadline) is never dead-lettered: it is
// nacked and comes again.
//
// Config.Services run beside the handlers in the same router and stop with
// it: the profile service answering profile.get requests
// (internal/profilerpc) is one.
//
// # Sizing retries
//
// Retries happen in place, while the broker waits for the ack, so the whole
// series must fit in the broker's ack timeout (broker.Config.AckTimeout,
// 30 s by default) or the broker redelivers meanwhile. The defaults (5
// retries, 500 ms doubling up to 10 s, ±20 % jitter) wait about 15.5 s in
// total (at least 12.4 s), which rides out a mail server that is away for 10
// seconds and leaves room for the attempts themselves.
package worker
