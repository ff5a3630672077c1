// Package console is outboxd's operator's console: a small web application,
// served by `outboxd console`, that answers the three questions of an
// incident from the database and the relay's and worker's /metrics.
//
//   - Is anything stuck? The overview shows the backlog per topic, the
//     oldest pending message, the active relay and its heartbeat, the
//     capture mode and its lag, the dead letters per handler, and charts of
//     the last 15 minutes. It refreshes itself every few seconds.
//   - What failed? The dead-letter list holds the relay's dead letters
//     (outbox_dead_letters) and the handlers' (dead_letters) in one
//     newest-first list, filtered and paged by keyset, with a detail view of
//     each.
//   - How do I put it back? Replay and purge one dead letter, a selection,
//     or every one a filter matches, after a confirmation that counts them;
//     the message lookup then says where a message is.
//
// The console works through the packages that own the tables (relay and
// deadletter) and runs as its own least-privilege role (service migration
// 00013): it reads the outbox, the inbox and both dead-letter tables,
// inserts into the outbox to replay and deletes dead letters, nothing else.
//
// It is safe by default: it refuses a non-loopback address without a
// password (HTTP basic auth), answers only requests addressed to it by an
// IP address, localhost or a configured name (no DNS rebinding), accepts a
// state change only as a same-origin POST carrying its CSRF token, and sends
// a Content-Security-Policy that allows no inline script. Pages are
// html/template, its JavaScript and style sheet are embedded files, and
// everything it serves lives under Config.PathPrefix, for a reverse proxy.
//
// Expensive figures are computed in the background (riverui's query
// cacher): requests read the last snapshot, never the tables' full counts.
package console
