// Package pgtx holds what the outbox library and the services built on it
// need around a pgx transaction, written once.
package pgtx

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollbackTimeout bounds a rollback that runs after the caller's context has
// ended, so that a dead connection cannot hang the caller.
const rollbackTimeout = 5 * time.Second

// Rollback rolls tx back even when ctx is already cancelled, within a few
// seconds; after a commit it does nothing. Defer it right after Begin.
//
// tx.Rollback with a cancelled context sends nothing and closes the
// connection instead; Rollback keeps ctx's values but not its cancellation
// (context.WithoutCancel), so the connection returns to its pool clean.
// Errors are dropped: a rollback that fails leaves no transaction behind to
// act on (pgx closes the connection).
func Rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	_ = tx.Rollback(ctx) // pgx.ErrTxClosed after a commit: nothing to do
}
