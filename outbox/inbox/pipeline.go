package inbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipelineTx is the transaction that pipelined effects (Message.Pipelined)
// see on a batch's fast path: Exec queues its statement, and the queue goes
// to the server in one round trip when the effects are done, or before any
// other statement, so that statements still run in the order they were
// made. A queued statement's failure surfaces at that flush, as the
// error of the effects together.
type pipelineTx struct {
	pgx.Tx
	queue *pgx.Batch
}

func newPipelineTx(tx pgx.Tx) *pipelineTx { return &pipelineTx{Tx: tx, queue: &pgx.Batch{}} }

// Exec queues sql; its CommandTag is empty, which is why only effects that
// do not read it may be pipelined.
func (p *pipelineTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.queue.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// flush sends the queued statements and returns the first failure.
func (p *pipelineTx) flush(ctx context.Context) error {
	if p.queue.Len() == 0 {
		return nil
	}
	n := p.queue.Len()
	results := p.Tx.SendBatch(ctx, p.queue)
	p.queue = &pgx.Batch{}
	if err := results.Close(); err != nil {
		return fmt.Errorf("pipeline of %d statements: %w", n, err)
	}
	return nil
}

func (p *pipelineTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Query(ctx, sql, args...)
}

func (p *pipelineTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.Tx.QueryRow(ctx, sql, args...)
}

func (p *pipelineTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := p.flush(ctx); err != nil {
		return errBatchResults{err}
	}
	return p.Tx.SendBatch(ctx, b)
}

func (p *pipelineTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	return p.Tx.CopyFrom(ctx, table, columns, src)
}

func (p *pipelineTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Begin(ctx)
}

// errRow is a pgx.Row that fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errBatchResults is a pgx.BatchResults that fails with err.
type errBatchResults struct{ err error }

func (r errBatchResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, r.err }
func (r errBatchResults) Query() (pgx.Rows, error)         { return nil, r.err }
func (r errBatchResults) QueryRow() pgx.Row                { return errRow{r.err} }
func (r errBatchResults) Close() error                     { return r.err }
func (r errBatchResults) Tx() pgx.Tx                       { return nil }
