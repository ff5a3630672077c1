// Package depgraph reads a package's import graph as `go list -deps`
// reports it, for tests that keep a package free of what it must not link
// (the library of internal/, the API of broker drivers).
package depgraph

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Graph maps each package of an import graph to its direct imports.
type Graph map[string][]string

// Load runs go list -deps on pkg and returns the non-test imports of pkg
// and of every package it depends on, pkg included.
func Load(t testing.TB, pkg string) Graph {
	t.Helper()
	goCmd, err := exec.LookPath("go") // go test puts its own toolchain first
	if err != nil {
		t.Fatalf("depgraph: no go command: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	graph := make(Graph)
	for line := range strings.Lines(string(out)) {
		if fields := strings.Fields(line); len(fields) > 0 {
			graph[fields[0]] = fields[1:]
		}
	}
	if _, ok := graph[pkg]; !ok {
		t.Fatalf("go list -deps %s does not list the package itself", pkg)
	}
	return graph
}

// Under returns the packages of g whose import path starts with prefix,
// sorted.
func (g Graph) Under(prefix string) []string {
	var pkgs []string
	for pkg := range g {
		if strings.HasPrefix(pkg, prefix) {
			pkgs = append(pkgs, pkg)
		}
	}
	slices.Sort(pkgs)
	return pkgs
}

// Chain returns a shortest chain of imports from "from" to "to", both
// included, to say how a package came in.
func (g Graph) Chain(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if pkg == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, imp := range g[pkg] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "…", to}
}
