// Package soak holds outboxd's fault tests, which run outboxd as real
// processes (the test binary re-executed as outboxd) against PostgreSQL
// clusters of their own, made with initdb and pg_basebackup on free ports
// with wal_level = logical. They need PostgreSQL 15's server binaries
// (OUTBOXD_PG_BIN, or /usr/lib/postgresql/15/bin) and fail without them.
//
// TestSoakUnderFaults runs the API, three relay replicas and the worker
// against an embedded NATS, signs users up at a steady rate, kills the
// leading relay and the worker with SIGKILL and restarts them, stops the
// broker and restarts PostgreSQL, then reconciles every user against its
// profile, audit record and welcome mail, with no outbox row left. It runs
// once per capture mode, one after the other: poll (the relays claim rows
// under the transaction horizon, woken by the API's NOTIFY) and wal (the
// relays stream a logical replication slot and the API notifies nobody; each
// leader kill is a takeover of the slot, and the slot outlives the kills
// and the restart).
//
// TestFailoverToAPromotedStandby runs two WAL-capturing relays on a
// multi-host DATABASE_URL (target_session_attrs=read-write) while a writer
// commits outbox rows, crashes the primary and promotes its streaming
// standby. PostgreSQL 15 has no slots on standbys, so the relay leading on
// the promoted server creates a new slot and publishes what the table holds
// before streaming: every row that survived the failover is published.
//
// TestWALKeyOrderAcrossKilledRelays runs three WAL-capturing relays while
// one writer per key commits transactions of one to five messages over 20
// keys, each numbered in its key's sequence, and kills the leading relay with
// SIGKILL twice (restarting it): every committed message is received, each
// key's first deliveries come in commit order with no gap (re-sends after a
// kill are counted), the outbox drains, and the one slot is taken over,
// never resynced after its creation.
//
// TestSoakLong is the long soak, not run in CI: an opt-in by environment
// variable, independent of -short. Without OUTBOXD_SOAK_DURATION it returns
// at once; with it, the API, two relays and the worker run against an
// embedded NATS for that long at 200 signups/s without faults, sampled
// every minute (RSS and CPU per 1,000 messages of each process, the
// outbox's size, inbox and audit_log bytes per row, commit → publish p99),
// and the run fails if it does not reconcile, if a process's RSS grows by
// more than half after the warm-up, or if the outbox backs up.
// OUTBOXD_SOAK_CAPTURE picks the relays' capture (wal, the default, or
// poll) and OUTBOXD_SOAK_OUT the directory of its CSV, SVG chart, Markdown
// table and process logs:
//
//	OUTBOXD_SOAK_DURATION=30m go test -run TestSoakLong -timeout 40m -v ./internal/soak/
//
// The package has no code of its own besides its tests.
package soak
