package api_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
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
	imports := importGraph(t, apiPackage)
	if _, ok := imports["github.com/outboxd/outboxd/internal/profile"]; !ok {
		t.Fatalf("go list -deps %s does not name internal/profile: the listing is not the API's", apiPackage)
	}
	for _, prefix := range forbiddenDeps {
		var linked []string
		for pkg := range imports {
			if strings.HasPrefix(pkg, prefix) {
				linked = append(linked, pkg)
			}
		}
		if len(linked) == 0 {
			continue
		}
		slices.Sort(linked)
		chain := importChain(imports, apiPackage, linked[0])
		t.Errorf("%s links %s (%d package(s) under %s): %s",
			apiPackage, linked[0], len(linked), prefix, strings.Join(chain, " → "))
	}
}

// importGraph runs go list -deps on pkg and returns each package it
// depends on (pkg included) with its direct imports.
func importGraph(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), goCommand(t), "list", "-deps",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	graph := make(map[string][]string)
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) > 0 {
			graph[fields[0]] = fields[1:]
		}
	}
	return graph
}

// importChain returns a shortest chain of imports from "from" to "to" in
// graph.
func importChain(graph map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if pkg == to {
			chain := []string{}
			for p := to; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, imp := range graph[pkg] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "…", to}
}

// goCommand is the go command on PATH: go test puts the toolchain's own
// first.
func goCommand(t *testing.T) string {
	t.Helper()
	name, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	return name
}
