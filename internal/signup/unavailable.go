package signup

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryAfterUnavailable is the Retry-After, in seconds, of a 503: long
// enough for a restarting PostgreSQL to accept connections again, short
// enough that a client retrying with its Idempotency-Key is not held long.
const retryAfterUnavailable = "2"

// databaseUnavailable tells whether err means PostgreSQL could not be
// reached or dropped the connection (down, restarting, shutting down), as
// opposed to a query that is wrong: the first is the client's cue to retry
// later, the second a bug.
func databaseUnavailable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		pgErr      interface{ SQLState() string } // *pgconn.PgError or redacted
		netErr     net.Error
	)
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P01..57P03: admin or crash
		// shutdown, server starting up.
		code := pgErr.SQLState()
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	// A connection that died earlier in the request: the statement was
	// never sent, or the connection is known closed.
	return pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed)
}
