package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/relay"
)

// DLQCmd lists, replays and purges dead letters: messages a handler gave up
// on (dead_letters) and messages the broker rejected (outbox_dead_letters,
// chosen with --relay).
type DLQCmd struct {
	List   DLQListCmd   `cmd:"" default:"1" help:"List dead letters (the default)."`
	Replay DLQReplayCmd `cmd:"" help:"Put dead letters back into the outbox to be published and handled again."`
	Purge  DLQPurgeCmd  `cmd:"" help:"Delete dead letters for good."`
}

// DLQListCmd lists dead letters.
type DLQListCmd struct {
	Handler string `name:"handler" help:"Only this handler's dead letters."`
	Limit   int    `name:"limit" default:"100" help:"Most dead letters listed of each kind."`
	JSON    bool   `name:"json" help:"Print JSON for scripts."`
}

// DLQReplayCmd replays dead letters by id.
type DLQReplayCmd struct {
	Relay bool    `name:"relay" help:"The ids are the relay's dead letters (rejected by the broker)."`
	IDs   []int64 `arg:"" name:"id" help:"Dead letter ids, as dlq list shows them."`
}

// DLQPurgeCmd deletes dead letters by id, or all of them.
type DLQPurgeCmd struct {
	Relay   bool    `name:"relay" help:"The ids are the relay's dead letters (rejected by the broker)."`
	All     bool    `name:"all" help:"Purge every handler dead letter (of --handler only, when given)."`
	Handler string  `name:"handler" help:"With --all: only this handler's."`
	IDs     []int64 `arg:"" optional:"" name:"id" help:"Dead letter ids, as dlq list shows them."`
}

type dlqListing struct {
	Handlers []deadletter.DeadLetter `json:"handlers"`
	Relay    []relay.DeadLetter      `json:"relay"`
}

// Run prints the dead letters.
func (c *DLQListCmd) Run(ctx context.Context, g *Globals) error {
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var l dlqListing
	if l.Handlers, err = deadletter.List(ctx, pool, deadletter.Filter{Handler: c.Handler, Limit: c.Limit}); err != nil {
		return err
	}
	if c.Handler == "" || c.Handler == "relay" {
		if l.Relay, err = relay.ListDeadLetters(ctx, pool, relay.ListDeadLettersParams{Limit: c.Limit}); err != nil {
			return err
		}
	}
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHANDLER\tMESSAGE ID\tTOPIC\tATTEMPTS\tFAILED AT\tERROR")
	for _, d := range l.Handlers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Handler, d.MessageID, d.Topic, d.Attempts, d.FailedAt.UTC().Format(time.RFC3339), firstLine(d.Error))
	}
	for _, d := range l.Relay {
		fmt.Fprintf(tw, "%d\trelay\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.MessageID, d.Topic, d.Attempts, d.FailedAt.UTC().Format(time.RFC3339), firstLine(d.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(l.Relay) > 0 {
		fmt.Fprintln(g.stdout, "(replay or purge relay dead letters with --relay)")
	}
	return nil
}

// Run replays the dead letters.
func (c *DLQReplayCmd) Run(ctx context.Context, g *Globals) error {
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var n int64
	if c.Relay {
		n, err = relay.Replay(ctx, pool, c.IDs...)
	} else {
		n, err = deadletter.Replay(ctx, pool, c.IDs...)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "replayed %d dead letters: back in the outbox\n", n)
	return nil
}

// Run purges the dead letters.
func (c *DLQPurgeCmd) Run(ctx context.Context, g *Globals) error {
	if c.All == (len(c.IDs) > 0) {
		return errors.New("name dead letter ids or --all, not both or neither")
	}
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var n int64
	switch {
	case c.Relay && c.All:
		n, err = relay.PurgeAllDeadLetters(ctx, pool)
	case c.Relay:
		n, err = relay.PurgeDeadLetters(ctx, pool, c.IDs...)
	case c.All:
		n, err = deadletter.PurgeAll(ctx, pool, c.Handler)
	default:
		n, err = deadletter.Purge(ctx, pool, c.IDs...)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "purged %d dead letters\n", n)
	return nil
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
