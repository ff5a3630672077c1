package cli

import (
	"context"
	"encoding/json"

	"github.com/outboxd/outboxd/internal/status"
)

// StatusCmd prints the backlog, the dead letters and the active relay.
type StatusCmd struct {
	JSON bool `name:"json" help:"Print JSON for scripts."`
}

// Run prints one status report.
func (c *StatusCmd) Run(ctx context.Context, g *Globals) error {
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := status.Collect(ctx, pool)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(g.stdout)
}
