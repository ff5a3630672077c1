package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
)

// Capture is how the leader finds the rows to publish.
type Capture string

const (
	// CapturePoll claims committed rows from the outbox table in id order,
	// each once every transaction that could still commit an earlier row
	// has ended (the xid horizon), woken by NOTIFY and a poll.
	CapturePoll Capture = "poll"
	// CaptureWAL streams the outbox's inserts from a logical replication
	// slot (pgoutput) in commit order: no horizon, no NOTIFY, no claim
	// query. It needs wal_level = logical, a role with REPLICATION and the
	// publication of package schema.
	CaptureWAL Capture = "wal"
	// CaptureAuto is CaptureWAL where the server and the role allow it, and
	// CapturePoll otherwise; the relay logs which it chose.
	CaptureAuto Capture = "auto"
)

// ParseCapture returns the capture mode named s.
func ParseCapture(s string) (Capture, error) {
	switch c := Capture(s); c {
	case CapturePoll, CaptureWAL, CaptureAuto:
		return c, nil
	}
	return "", fmt.Errorf("unknown capture mode %q: use poll, wal or auto", s)
}

// ErrWALUnavailable is wrapped by the error of a relay asked for CaptureWAL
// on a server or with a role that cannot stream: the error says what to
// change.
var ErrWALUnavailable = errors.New("relay: WAL capture unavailable")

// SlotName is the default replication slot of the outbox in database: its
// name, made a valid slot name, and a hash of it, so that the relays of two
// databases of one cluster never share a slot.
func SlotName(database string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(database) {
		if c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	h := fnv.New32a()
	h.Write([]byte(database))
	return fmt.Sprintf("outbox_%s_%08x", name, h.Sum32())
}

var (
	slotNameRE   = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
)

func validSlotName(s string) bool   { return slotNameRE.MatchString(s) }
func validIdentifier(s string) bool { return identifierRE.MatchString(s) }

// walPrerequisitesSQL reads what WAL capture needs of the server and role.
const walPrerequisitesSQL = `
SELECT current_setting('wal_level'),
	(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
	EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`

// resolveCapture turns the configured mode into the one the leader runs:
// CaptureAuto becomes CaptureWAL or CapturePoll, and CaptureWAL on a server
// or role that cannot stream is an error wrapping ErrWALUnavailable.
func (r *Relay) resolveCapture(ctx context.Context) (Capture, error) {
	if r.cfg.Capture == CapturePoll {
		return CapturePoll, nil
	}
	var (
		walLevel     string
		canReplicate bool
		publication  bool
	)
	if err := r.pool.QueryRow(ctx, walPrerequisitesSQL, r.cfg.Publication).Scan(&walLevel, &canReplicate, &publication); err != nil {
		return "", fmt.Errorf("relay: check WAL capture: %w", err)
	}
	var missing error
	switch {
	case walLevel != "logical":
		missing = fmt.Errorf("%w: the server has wal_level = %s; run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL, or capture by polling", ErrWALUnavailable, walLevel)
	case !canReplicate:
		missing = fmt.Errorf("%w: the database role has no REPLICATION attribute; ALTER ROLE it REPLICATION (it is not inherited from a group role), or capture by polling", ErrWALUnavailable)
	case !publication:
		missing = fmt.Errorf("%w: publication %s does not exist; run the outbox schema migrations (schema.Migrate), or capture by polling", ErrWALUnavailable, r.cfg.Publication)
	}
	if r.cfg.Capture == CaptureWAL {
		if missing != nil {
			return "", missing
		}
		return CaptureWAL, nil
	}
	if missing != nil {
		r.log.Info("relay: capture auto: polling", "reason", missing.Error())
		return CapturePoll, nil
	}
	r.log.Info("relay: capture auto: streaming the WAL", "slot", r.cfg.Slot, "publication", r.cfg.Publication)
	return CaptureWAL, nil
}
