// Package migrations holds outboxd's goose SQL migrations, embedded in the
// binary. The same files run with the stock goose CLI:
//
//	goose -dir migrations postgres "$DATABASE_URL" up
package migrations

import "embed"

// FS holds every migration file of this folder.
//
//go:embed *.sql
var FS embed.FS
