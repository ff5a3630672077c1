package worker

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outboxd/outboxd/internal/mail"
)

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying: the message goes to the dead
// letters at once.
func permanent(err error) error { return permanentError{err} }

// isPermanent reports whether retrying err is pointless: a poison message, a
// mail the server refused for good, or data PostgreSQL refuses as invalid
// (SQLSTATE class 22).
func isPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) || errors.Is(err, mail.ErrRejected) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "22"
}

// poison wraps a decoding failure.
func poison(format string, args ...any) error {
	return permanent(fmt.Errorf("poison message: "+format, args...))
}
