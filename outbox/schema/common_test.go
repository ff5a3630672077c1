package schema_test

import (
	"testing"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// exampleDSN is an empty database for the Examples, which migrate it.
var exampleDSN string

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithEmptyDatabase(&exampleDSN))
}
