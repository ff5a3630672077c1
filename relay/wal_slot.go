package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// slotState is what pg_replication_slots says of the relay's slot.
type slotState struct {
	exists    bool
	database  string
	active    bool
	activePID int32
	confirmed pglogrepl.LSN
	// walStatus is "lost" once the server removed WAL the slot still
	// needed (max_slot_wal_keep_size): it can never stream again.
	walStatus string
}

const slotStateSQL = `
SELECT coalesce(database, ''), active, coalesce(active_pid, 0),
	coalesce(confirmed_flush_lsn::text, '0/0'), coalesce(wal_status, '')
FROM pg_replication_slots WHERE slot_name = $1`

func (r *Relay) slotState(ctx context.Context) (slotState, error) {
	var (
		st        slotState
		confirmed string
	)
	err := r.pool.QueryRow(ctx, slotStateSQL, r.cfg.Slot).Scan(&st.database, &st.active, &st.activePID, &confirmed, &st.walStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotState{}, nil
	}
	if err != nil {
		return slotState{}, fmt.Errorf("look up replication slot %s: %w", r.cfg.Slot, err)
	}
	st.exists = true
	if st.confirmed, err = pglogrepl.ParseLSN(confirmed); err != nil {
		return slotState{}, fmt.Errorf("replication slot %s: confirmed position: %w", r.cfg.Slot, err)
	}
	return st, nil
}

// slotReleaseTimeout bounds the wait for the walsender of a dead leader to
// end once terminated.
const slotReleaseTimeout = 5 * time.Second

// releaseSlot ends the walsender still streaming the slot: a leader that
// died or lost its network leaves it running until wal_sender_timeout,
// and only one walsender may stream a slot. The caller holds the leader
// lock, so that walsender belongs to no leader.
func (r *Relay) releaseSlot(ctx context.Context, st slotState) error {
	if !st.active {
		return nil
	}
	r.log.Warn("relay: replication slot held by another session, ending it", "slot", r.cfg.Slot, "pid", st.activePID)
	if _, err := r.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, st.activePID); err != nil {
		return fmt.Errorf("end the walsender (pid %d) of slot %s: %w", st.activePID, r.cfg.Slot, err)
	}
	deadline := time.Now().Add(slotReleaseTimeout)
	for {
		var active bool
		err := r.pool.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, r.cfg.Slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !active {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for slot %s: %w", r.cfg.Slot, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s still active %s after ending pid %d", r.cfg.Slot, slotReleaseTimeout, st.activePID)
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// dropSlot drops the relay's slot, ending its walsender first.
func (r *Relay) dropSlot(ctx context.Context, st slotState) error {
	if err := r.releaseSlot(ctx, st); err != nil {
		return err
	}
	_, err := r.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, r.cfg.Slot)
	if err != nil {
		return fmt.Errorf("drop replication slot %s: %w", r.cfg.Slot, err)
	}
	return nil
}

// connectReplication opens a logical replication connection to the pool's
// database.
func (r *Relay) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := r.pool.Config().ConnConfig.Config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "outboxd relay wal"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for replication: %w", err)
	}
	return conn, nil
}

// createSlot creates the relay's slot on conn and returns where its stream
// starts and the snapshot it exported: the rows visible in that snapshot
// are exactly those the stream will not carry. The snapshot lives until
// conn runs its next command, so the caller imports it first.
func (r *Relay) createSlot(ctx context.Context, conn *pgconn.PgConn) (pglogrepl.LSN, string, error) {
	r.log.Info("relay: creating the replication slot: PostgreSQL first waits for the transactions in progress anywhere in the cluster to end", "slot", r.cfg.Slot)
	defer r.reportSlotWait(ctx)()
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: %w", r.cfg.Slot, err)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, "", fmt.Errorf("replication slot %s: consistent point: %w", r.cfg.Slot, err)
	}
	return start, res.SnapshotName, nil
}

// slotWaitReportInterval is how often a relay still creating its slot says
// which transactions it waits for.
const slotWaitReportInterval = 5 * time.Second

// reportSlotWait logs, every slotWaitReportInterval until the returned stop
// is called, the oldest transactions holding an xid anywhere in the cluster:
// creating a logical slot waits for them to end, so a long one (in another
// database too) holds back a relay's start.
func (r *Relay) reportSlotWait(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		tick := time.NewTicker(slotWaitReportInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			oldest, err := r.oldestTransactions(ctx)
			if err != nil {
				oldest = "unknown: " + err.Error()
			}
			r.log.Warn("relay: still creating the replication slot: waiting for transactions in progress to end",
				"slot", r.cfg.Slot, "waited", time.Since(began).Round(time.Second), "oldest_transactions", oldest)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// oldestTransactions describes the three oldest transactions holding an xid
// in the cluster: pid, database, application and age, never their query.
func (r *Relay) oldestTransactions(ctx context.Context) (string, error) {
	rows, err := r.pool.Query(ctx, `
SELECT format('pid %s in %s (%s) for %ss', pid, coalesce(datname, '-'), coalesce(nullif(application_name, ''), '-'),
	round(extract(epoch FROM now() - xact_start)::numeric, 1))
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY xact_start
LIMIT 3`)
	if err != nil {
		return "", err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	if len(found) == 0 {
		return "none seen", nil
	}
	return strings.Join(found, "; "), nil
}

// importSnapshot returns the exported snapshot named name as a pg_snapshot
// value (xmin:xmax:xip), which pg_visible_in_snapshot tests rows against
// long after the export is gone.
func (r *Relay) importSnapshot(ctx context.Context, name string) (string, error) {
	var snap string
	err := pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(name)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snap)
	})
	if err != nil {
		return "", fmt.Errorf("import the slot's snapshot: %w", err)
	}
	return snap, nil
}

// quoteLiteral quotes s as an SQL string literal; SET TRANSACTION SNAPSHOT
// takes no parameter.
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// isSlotInvalidated tells whether err is the server refusing to stream a
// slot whose WAL it removed.
func isSlotInvalidated(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55000"
}

// slotRecord is the relay_slot row of the relay's slot.
type slotRecord struct {
	found    bool
	snapshot string
	drained  bool
}

func (r *Relay) slotRecord(ctx context.Context) (slotRecord, error) {
	rec := slotRecord{found: true}
	err := r.pool.QueryRow(ctx, `SELECT snapshot::text, drained_at IS NOT NULL FROM relay_slot WHERE slot_name = $1`,
		r.cfg.Slot).Scan(&rec.snapshot, &rec.drained)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotRecord{}, nil
	}
	if err != nil {
		return slotRecord{}, fmt.Errorf("look up relay_slot %s: %w", r.cfg.Slot, err)
	}
	return rec, nil
}

// recordSlot remembers the snapshot of a slot just created, not drained.
func (r *Relay) recordSlot(ctx context.Context, snapshot string) error {
	_, err := r.pool.Exec(ctx, `
INSERT INTO relay_slot (slot_name, snapshot) VALUES ($1, $2::pg_snapshot)
ON CONFLICT (slot_name) DO UPDATE SET snapshot = excluded.snapshot, created_at = now(), drained_at = NULL`,
		r.cfg.Slot, snapshot)
	if err != nil {
		return fmt.Errorf("record slot %s: %w", r.cfg.Slot, err)
	}
	return nil
}

// forgetSlot deletes the relay_slot row of a slot that no longer exists.
func (r *Relay) forgetSlot(ctx context.Context) error {
	if _, err := r.pool.Exec(ctx, `DELETE FROM relay_slot WHERE slot_name = $1`, r.cfg.Slot); err != nil {
		return fmt.Errorf("forget the record of dropped slot %s: %w", r.cfg.Slot, err)
	}
	return nil
}

// markDrained records that no row of the slot's snapshot is left.
func (r *Relay) markDrained(ctx context.Context) error {
	if _, err := r.pool.Exec(ctx, `UPDATE relay_slot SET drained_at = now() WHERE slot_name = $1`, r.cfg.Slot); err != nil {
		return fmt.Errorf("mark slot %s drained: %w", r.cfg.Slot, err)
	}
	return nil
}
