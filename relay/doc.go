// Package relay publishes the messages of a transactional outbox (package
// outbox) through any Watermill publisher, in order, without losing one.
//
// # Why the transaction horizon
//
// Outbox ids come from a sequence, so they are handed out in insert order,
// not commit order: a transaction can insert row 7, stay open, and commit
// after row 8 was published. A relay that walks ids would then skip row 7
// for good, or publish it after its successor. The relay therefore claims a
// row only when its writing transaction's id (the xid8 column) is below the
// horizon: the oldest transaction of this database still in progress in the
// current snapshot. Every transaction that got its xid before the row's has
// ended, so no row that precedes it can still appear. Transactions of other
// databases of the cluster are skipped, since they cannot write this outbox.
// A long transaction delays publishing (the outboxd_relay_horizon_age_seconds
// metric shows it); it never reorders or loses a message.
//
// # Two sources, one pipeline
//
// Config.Capture chooses how the leader finds committed rows. CapturePoll
// claims them from the table under the horizon, as above, woken by NOTIFY
// and a poll: it needs nothing but the outbox table, and publishes in id
// order. CaptureWAL streams the outbox's inserts from a logical replication
// slot (pgoutput) in commit order, as the slot delivers commits: no
// horizon, so a long transaction holds back only its own rows; no NOTIFY,
// so writers may enqueue with outbox.Writer{WithoutNotify: true}; no claim
// query. Both feed the same lanes (or runs), spans, retries, dead letters,
// settlement and metrics.
//
// The table stays the source of truth in WAL capture too. A new slot is
// created with an exported snapshot: the rows visible in that snapshot are
// exactly those the stream will not carry, and the relay publishes them
// from the table (through the poll claim, with pg_visible_in_snapshot in
// place of the horizon) before it streams, recording in relay_slot when it
// is done. A slot that is dropped, lost (max_slot_wal_keep_size) or of
// unknown past is replaced the same way, so no row is ever skipped; a
// resync is logged and counted (outboxd_relay_capture_resyncs_total). The
// slot's confirmed position moves only past transactions whose rows are
// all published and settled, so a restart resumes there (republishing, with
// the same message ids, what was published after it); when nothing is
// pending it follows the server's keepalives, so an idle outbox pins no WAL.
// A PostgreSQL 15 standby has no slots: after a failover the relay finds
// none on the new primary and publishes what its table holds.
//
// # Why one leader
//
// Order per key needs one publisher at a time, and every replica of a service
// may run a relay. Replicas elect a leader with a PostgreSQL session advisory
// lock held on a dedicated connection: the lock dies with the session, so
// when the leader's process is killed or its connection drops, a standby,
// retrying every second, takes over within seconds, while the old leader,
// reading that connection all the time, stops publishing at once. Replicas
// never coordinate otherwise, so at worst a takeover publishes a message
// twice (with the same message id); it never skips one.
//
// # What a batch does
//
// The leader claims up to BatchSize eligible rows in id order (or takes
// them from the stream), publishes them in Concurrency lanes split by key
// (one key stays in one lane, in order; different keys overlap their broker
// round trips) or, when the publisher is a BatchPublisher, in runs holding
// the next message of every key at once, then deletes the
// published rows in one statement (or marks them, with a Retention). While a
// full batch publishes, the next one is claimed; it is dropped unless every
// message of the first went out, since it holds their keys' successors. A key
// stops at its first failure in a batch so that its later messages cannot
// overtake it. A transient failure (broker down) stops the batch and retries
// it with capped exponential backoff and jitter, counting nothing against
// the messages; a permanent one (IsPermanent: the broker rejects this
// message for good) is counted and retried with backoff, holding back only
// the later messages of its key while the rest flows on, and after
// MaxAttempts moved to outbox_dead_letters, from where Replay puts it back.
// A notification (LISTEN on outbox.NotifyChannel) wakes the leader as soon
// as messages commit; a poll covers missed notifications.
//
// A polling leader's claims start from the claim floor, the smallest pending
// id once no transaction that could still commit a lower one is in flight,
// so that they do not walk the published rows VACUUM has not removed yet: a
// claim costs the same on a backlog of millions as on one of thousands.
//
// # Usage
//
//	pub := ... // any watermill message.Publisher: NATS, AMQP, Kafka, SQL, ...
//	r, err := relay.New(pool, pub, relay.Config{
//		Logger:     logger,
//		Registerer: prometheus.DefaultRegisterer,
//	})
//	if err != nil {
//		return err
//	}
//	// readiness probe: r.Ready(ctx)
//	return r.Run(ctx) // until ctx ends
//
// Messages arrive with the outbox message id as Watermill UUID and in the
// metadata (outbox.MetadataMessageID), with the key (outbox.MetadataKey) and
// enqueue time (outbox.MetadataEnqueuedAt) added to the metadata written
// with them. Delivery is at least once: consumers deduplicate by message id.
//
// Each publish is an OpenTelemetry producer span named "publish <topic>",
// the child of the W3C "traceparent" stored in the row's metadata; the
// message carries the span's own traceparent on, so a consumer's span
// continues the writer's trace (see Config.TracerProvider).
//
// The relay needs the outbox, outbox_dead_letters and relay_leader tables,
// which package schema creates (schema.Migrate).
package relay
