package inbox_test

import (
	"testing"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// exampleDSN is a migrated database shared by the examples.
var exampleDSN string

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithDatabase(&exampleDSN))
}
