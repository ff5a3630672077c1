package api_test

import (
	"strings"
	"testing"

	"github.com/outboxd/outboxd/internal/depgraph"
)

// apiPackage is the package whose import graph TestNoBrokerDriverLinked
// checks.
const apiPackage = "github.com/outboxd/outboxd/internal/api"

// forbiddenDeps are the import path prefixes the API must not link: the
// broker drivers and the packages that bring them in. The API reaches the
// profile service through ProfileSource and package profile only.
var forbiddenDeps = []string{
	"github.com/IBM/sarama",
	"github.com/dnwe/otelsarama",
	"github.com/redis/go-redis",
	"github.com/rabbitmq/amqp091-go",
	"github.com/nats-io/",                 // nats-server, nats.go and theirs
	"github.com/ThreeDotsLabs/watermill-", // every Watermill transport
	"github.com/outboxd/outboxd/internal/broker",
	"github.com/outboxd/outboxd/internal/profilerpc",
}

// TestNoBrokerDriverLinked fails when a non-test import of the API, direct
// or not, is a broker driver, and names the chain of imports that brings it
// in.
func TestNoBrokerDriverLinked(t *testing.T) {
	t.Parallel()
	graph := depgraph.Load(t, apiPackage)
	if len(graph.Under("github.com/outboxd/outboxd/internal/profile")) == 0 {
		t.Fatalf("go list -deps %s does not name internal/profile: the listing is not the API's", apiPackage)
	}
	for _, prefix := range forbiddenDeps {
		linked := graph.Under(prefix)
		if len(linked) == 0 {
			continue
		}
		t.Errorf("%s links %s (%d package(s) under %s): %s",
			apiPackage, linked[0], len(linked), prefix, strings.Join(graph.Chain(apiPackage, linked[0]), " → "))
	}
}
