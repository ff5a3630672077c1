package database

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/outboxd/outboxd/outbox/schema"
)

// legacyVersion is a migration that outboxd's own set held before the
// outbox library got a set of its own, and the library migration it became.
type legacyVersion struct {
	service int64  // version in goose_db_version
	library int64  // version in schema.VersionTable
	object  string // what the migration created, to_regclass/to_regprocedure
	keep    bool   // the service's set still has this version (it lost a part)
}

// legacyVersions maps the pre-split history: the files of versions 2, 4, 5
// and 6 moved to the library as 1 to 4; version 11 created prune_inbox (now
// the library's 5) beside prune_idempotency_keys, which stays the service's.
var legacyVersions = []legacyVersion{
	{service: 2, library: 1, object: "to_regclass('outbox')"},
	{service: 4, library: 2, object: "to_regclass('outbox_dead_letters')"},
	{service: 5, library: 3, object: "to_regclass('relay_leader')"},
	{service: 6, library: 4, object: "to_regclass('inbox')"},
	{service: 11, library: 5, object: "to_regprocedure('prune_inbox(interval)')", keep: true},
}

// adoptLibraryLockKey serializes adoptions of replicas starting together.
const adoptLibraryLockKey = 0x6f7574626f7861

// adoptLibraryHistory upgrades a database migrated before the outbox library
// had its own migrations: in one transaction it records in the library's
// version table each moved migration whose objects exist, and takes the
// moved versions out of the service's goose_db_version, so that both sets'
// status is true and both can go down. It does nothing on a new database, or
// once the library's version table exists.
func adoptLibraryHistory(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("adopt library migrations: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(adoptLibraryLockKey)); err != nil {
		return fmt.Errorf("adopt library migrations: lock: %w", err)
	}
	var serviceTable, libraryTable bool
	err = tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL`,
		goose.DefaultTablename, schema.VersionTable).Scan(&serviceTable, &libraryTable)
	if err != nil {
		return fmt.Errorf("adopt library migrations: look up version tables: %w", err)
	}
	if !serviceTable || libraryTable {
		return tx.Rollback()
	}

	var moved []legacyVersion
	for _, v := range legacyVersions {
		var applied, exists bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+goose.DefaultTablename+`
			WHERE version_id = $1 AND is_applied), `+v.object+` IS NOT NULL`, v.service).Scan(&applied, &exists)
		if err != nil {
			return fmt.Errorf("adopt library migrations: look up version %d: %w", v.service, err)
		}
		if applied && exists {
			moved = append(moved, v)
		}
	}
	if len(moved) == 0 {
		return tx.Rollback()
	}

	store, err := database.NewStore(database.DialectPostgres, schema.VersionTable)
	if err != nil {
		return fmt.Errorf("adopt library migrations: %w", err)
	}
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return fmt.Errorf("adopt library migrations: create %s: %w", schema.VersionTable, err)
	}
	if err := store.Insert(ctx, tx, database.InsertRequest{Version: 0}); err != nil {
		return fmt.Errorf("adopt library migrations: %w", err)
	}
	for _, v := range moved {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v.library}); err != nil {
			return fmt.Errorf("adopt library migrations: record version %d: %w", v.library, err)
		}
		if v.keep {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+goose.DefaultTablename+` WHERE version_id = $1`, v.service); err != nil {
			return fmt.Errorf("adopt library migrations: forget service version %d: %w", v.service, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("adopt library migrations: commit: %w", err)
	}
	return nil
}
