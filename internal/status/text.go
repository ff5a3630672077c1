package status

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText writes r for a person to read.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "outbox backlog:\t%d pending, oldest %s\n", r.Pending, age(r.OldestPendingAgeSeconds))
	for _, b := range r.Backlog {
		fmt.Fprintf(tw, "  %s\t%d pending, oldest %s\n", b.Topic, b.Pending, age(b.OldestPendingAgeSeconds))
	}
	if len(r.DeadLetters) == 0 {
		fmt.Fprintf(tw, "dead letters:\tnone\n")
	} else {
		fmt.Fprintf(tw, "dead letters:\t\n")
		for _, d := range r.DeadLetters {
			fmt.Fprintf(tw, "  %s\t%d\n", d.Handler, d.Count)
		}
	}
	if r.Relay == nil {
		fmt.Fprintf(tw, "active relay:\tnone has led yet\n")
	} else {
		fmt.Fprintf(tw, "active relay:\t%s, leader since %s, last heartbeat %s ago\n",
			r.Relay.Name, r.Relay.Since.UTC().Format(time.RFC3339), age(r.Relay.HeartbeatAgeSeconds))
	}
	return tw.Flush()
}

func age(seconds float64) string {
	return (time.Duration(seconds * float64(time.Second))).Round(time.Millisecond).String()
}
