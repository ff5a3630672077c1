// Package schema creates the outbox library's tables in a service's
// database: the outbox, its dead letters, the relay's leader table, the
// inbox and its prune function. Nothing else: a service keeps its own tables
// under its own migrations.
//
// The library's migrations are goose SQL files with a version table of their
// own, VersionTable, so that they never mix with the service's history in
// goose's default goose_db_version. They go into the first schema of the
// connection's search_path, as any unqualified CREATE TABLE does: to keep
// them apart from the service's tables, give the migrating connection a
// search_path (for example ?search_path=outbox in the DSN) and the same one
// to the writers, relays and consumers.
//
// Apply them at start-up, before the service's own migrations (which may
// grant its roles rights on these tables):
//
//	if err := schema.Migrate(ctx, pool); err != nil {
//		return err
//	}
//
// or with the stock goose CLI:
//
//	goose -table outbox_goose_db_version -dir outbox/schema/migrations postgres "$DATABASE_URL" up
//
// Replicas that start together wait for each other on a PostgreSQL advisory
// lock instead of racing.
package schema
