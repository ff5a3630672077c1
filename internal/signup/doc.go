// Package signup is outboxd's signup use case: it decodes and validates a
// signup request, hashes the password with argon2id, and writes the user and
// its user.created outbox message in one transaction, so that a user exists
// if and only if its event will be published.
//
// Password hashing happens before the transaction opens: it takes tens of
// milliseconds of CPU and memory, and a transaction held open that long would
// pin a pooled connection and hold the email's unique-index slot for nothing.
//
// The HTTP handlers (Handler) map the use case's errors to RFC 9457 problems;
// everything below them speaks in Go errors.
package signup
