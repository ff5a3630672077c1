package signup

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestRedactDropsTheFailingRowOfAPostgresError(t *testing.T) {
	t.Parallel()
	const hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$a2V5"
	pgErr := &pgconn.PgError{
		Severity:       "ERROR",
		Code:           "23514",
		Message:        `new row for relation "users" violates check constraint "users_name_check"`,
		Detail:         "Failing row contains (0190…, ada@example.com, , " + hash + ", 2025-01-01).",
		ConstraintName: "users_name_check",
	}
	err := fmt.Errorf("insert user: %w", redact(pgErr))

	// A log handler may print an error any of these ways.
	asJSON, jsonErr := json.Marshal(errors.Unwrap(err))
	require.NoError(t, jsonErr)
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", errors.Unwrap(err)), string(asJSON)} {
		require.NotContains(t, s, hash)
		require.NotContains(t, s, "Failing row")
	}
	require.Contains(t, err.Error(), "SQLSTATE 23514")
	require.Contains(t, err.Error(), "users_name_check")
	var coded interface{ SQLState() string }
	require.ErrorAs(t, err, &coded, "the code survives for classification")
	require.Equal(t, "23514", coded.SQLState())

	plain := errors.New("not from PostgreSQL")
	require.Same(t, plain, redact(plain))
}
