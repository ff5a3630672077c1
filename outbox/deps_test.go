package outbox_test

import (
	"strings"
	"testing"

	"github.com/outboxd/outboxd/internal/depgraph"
)

// libraryPackages are the public packages a service adopts.
var libraryPackages = []string{
	"github.com/outboxd/outboxd/outbox",
	"github.com/outboxd/outboxd/outbox/inbox",
	"github.com/outboxd/outboxd/outbox/pgtx",
	"github.com/outboxd/outboxd/outbox/schema",
	"github.com/outboxd/outboxd/relay",
}

// TestLibraryImportsNothingOfTheService: no library package links
// internal/ (the service's signup, users, brokers, ...), directly or not.
func TestLibraryImportsNothingOfTheService(t *testing.T) {
	t.Parallel()
	for _, pkg := range libraryPackages {
		graph := depgraph.Load(t, pkg)
		if linked := graph.Under("github.com/outboxd/outboxd/internal/"); len(linked) > 0 {
			t.Errorf("%s links %s: %s", pkg, linked[0], strings.Join(graph.Chain(pkg, linked[0]), " → "))
		}
	}
}
