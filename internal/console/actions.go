package console

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/relay"
)

// action is what an operator does to dead letters.
type action string

const (
	actionReplay action = "replay"
	actionPurge  action = "purge"
)

// Verb is the action as a button says it.
func (a action) Verb() string {
	if a == actionReplay {
		return "Replay"
	}
	return "Purge"
}

// Explain says what the action does, for the confirmation.
func (a action) Explain() string {
	if a == actionReplay {
		return "Replaying puts each message back into the outbox, with its message id, to be published again: handlers that already processed it skip it through their inbox."
	}
	return "Purging deletes them for good."
}

// confirmPage asks before a bulk action, saying how many it touches.
type confirmPage struct {
	Action action
	Count  int64
	// What describes the dead letters concerned.
	What string
	// Post is where the confirmation posts; Fields its hidden fields.
	Post   string
	Fields [][2]string
	Back   string
}

// actOnSelection replays or purges the dead letters ticked in a form (or
// the one of a detail page). More than one is confirmed first.
func (c *Console) actOnSelection(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refs, err := parseRefs(r.PostForm["sel"])
		if err != nil || len(refs) == 0 {
			c.fail(w, r, http.StatusBadRequest, "Select at least one dead letter.")
			return
		}
		back := safeBack(c.cfg.PathPrefix, r.PostFormValue("back"))
		if len(refs) > 1 && r.PostFormValue("confirmed") != "yes" {
			fields := [][2]string{{"confirmed", "yes"}, {"back", back}}
			for _, ref := range refs {
				fields = append(fields, [2]string{"sel", ref.source + ":" + strconv.FormatInt(ref.id, 10)})
			}
			c.render(w, r, http.StatusOK, "confirm", a.Verb()+" dead letters", confirmPage{
				Action: a, Count: int64(len(refs)), What: "the selected dead letters",
				Post: c.cfg.PathPrefix + "/deadletters/" + string(a), Fields: fields, Back: back})
			return
		}
		n, err := c.apply(r.Context(), a, refs)
		if err != nil {
			c.logger.ErrorContext(r.Context(), "console: "+string(a), "error", err)
			c.fail(w, r, http.StatusConflict, fmt.Sprintf("%s failed after %d: %s", a.Verb(), n, oneLine(err.Error())))
			return
		}
		c.logger.InfoContext(r.Context(), "console: dead letters "+string(a)+"ed", "count", n)
		c.snaps.refresh(r.Context())
		http.Redirect(w, r, withNotice(back, a, n), http.StatusSeeOther)
	}
}

// apply runs a on refs, by source, through the package of each table.
func (c *Console) apply(ctx context.Context, a action, refs []letterRef) (int64, error) {
	ids := map[string][]int64{}
	for _, ref := range refs {
		ids[ref.source] = append(ids[ref.source], ref.id)
	}
	var n int64
	for _, source := range slices.Sorted(maps.Keys(ids)) {
		var done int64
		var err error
		switch {
		case source == SourceRelay && a == actionReplay:
			done, err = relay.Replay(ctx, c.pool, ids[source]...)
		case source == SourceRelay:
			done, err = relay.PurgeDeadLetters(ctx, c.pool, ids[source]...)
		case a == actionReplay:
			done, err = deadletter.Replay(ctx, c.pool, ids[source]...)
		default:
			done, err = deadletter.Purge(ctx, c.pool, ids[source]...)
		}
		n += done
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// serveConfirmMatching counts what a filter matches and asks before acting
// on all of it. The count is taken at the database's now, which bounds the
// action: a dead letter failing after it is not touched unseen.
func (c *Console) serveConfirmMatching(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a := action(q.Get("action"))
	if a != actionReplay && a != actionPurge {
		c.fail(w, r, http.StatusBadRequest, "Unknown action: replay or purge.")
		return
	}
	form := readFilterForm(q)
	f, err := form.filter()
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Bad filter: "+err.Error())
		return
	}
	var now time.Time
	if err := c.pool.QueryRow(r.Context(), "SELECT now()").Scan(&now); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Cannot reach the database: "+oneLine(err.Error()))
		return
	}
	f.Until = earliest(f.Until, now)
	n, err := c.store.count(r.Context(), f)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Cannot count the dead letters: "+oneLine(err.Error()))
		return
	}
	back := c.cfg.PathPrefix + "/deadletters?" + form.Query()
	fields := [][2]string{{"counted_at", now.UTC().Format(time.RFC3339Nano)}, {"back", back}}
	for k, v := range form.values() {
		fields = append(fields, [2]string{k, v[0]})
	}
	slices.SortFunc(fields, func(x, y [2]string) int { return strings.Compare(x[0], y[0]) })
	c.render(w, r, http.StatusOK, "confirm", a.Verb()+" matching dead letters", confirmPage{
		Action: a, Count: n, What: form.Describe() + " (failed before " + now.UTC().Format(time.DateTime) + " UTC)",
		Post: c.cfg.PathPrefix + "/deadletters/" + string(a) + "-matching", Fields: fields, Back: back})
}

// actOnMatching replays or purges every dead letter a confirmed filter
// matches, up to the time it was counted at.
func (c *Console) actOnMatching(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		form := readFilterForm(r.PostForm)
		f, err := form.filter()
		counted, terr := time.Parse(time.RFC3339Nano, r.PostFormValue("counted_at"))
		if err != nil || terr != nil {
			c.fail(w, r, http.StatusBadRequest, "Bad confirmation: go back to the list and start again.")
			return
		}
		f.Until = earliest(f.Until, counted)
		var n int64
		if a == actionPurge {
			n, err = c.purgeMatching(r.Context(), f)
		} else {
			n, err = c.replayMatching(r.Context(), f)
		}
		if err != nil {
			c.logger.ErrorContext(r.Context(), "console: "+string(a)+" matching", "error", err)
			c.fail(w, r, http.StatusConflict, fmt.Sprintf("%s failed after %d: %s", a.Verb(), n, oneLine(err.Error())))
			return
		}
		c.logger.InfoContext(r.Context(), "console: matching dead letters "+string(a)+"ed", "count", n, "filter", form.Describe())
		c.snaps.refresh(r.Context())
		http.Redirect(w, r, withNotice(c.cfg.PathPrefix+"/deadletters?"+form.Query(), a, n), http.StatusSeeOther)
	}
}

func (c *Console) purgeMatching(ctx context.Context, f Filter) (int64, error) {
	var n int64
	if f.wants(SourceRelay) {
		done, err := relay.PurgeMatchingDeadLetters(ctx, c.pool, f.relay())
		if n += done; err != nil {
			return n, err
		}
	}
	if f.wants(SourceHandler) {
		done, err := deadletter.PurgeMatching(ctx, c.pool, f.handler())
		if n += done; err != nil {
			return n, err
		}
	}
	return n, nil
}

// replayBatch is how many dead letters one replay statement moves.
const replayBatch = 500

// replayMatching replays what f matches a page at a time, newest first.
func (c *Console) replayMatching(ctx context.Context, f Filter) (int64, error) {
	var n int64
	var cursor Cursor
	for {
		page, next, err := c.store.list(ctx, f, cursor, replayBatch)
		if err != nil {
			return n, err
		}
		refs := make([]letterRef, len(page))
		for i, l := range page {
			refs[i] = letterRef{l.Source, l.ID}
		}
		done, err := c.apply(ctx, actionReplay, refs)
		if n += done; err != nil || next.FailedAt.IsZero() {
			return n, err
		}
		cursor = next
	}
}

func parseRefs(values []string) ([]letterRef, error) {
	refs := make([]letterRef, 0, len(values))
	seen := map[letterRef]bool{}
	for _, v := range values {
		ref, err := parseRef(v)
		if err != nil {
			return nil, err
		}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

// safeBack is where to go after an action: a page of the console, never
// another site.
func safeBack(prefix, back string) string {
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path == "" || u.Path[0] != '/' ||
		(len(u.Path) > 1 && u.Path[1] == '/') || u.Path[:min(len(u.Path), len(prefix)+1)] != prefix+"/" {
		return prefix + "/deadletters"
	}
	return u.String()
}

// withNotice adds what was done to a link, for the page to say so.
func withNotice(link string, a action, n int64) string {
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("done", string(a))
	q.Set("n", strconv.FormatInt(n, 10))
	u.RawQuery = q.Encode()
	return u.String()
}

// notice is the sentence for a done= link: the text is made here, from an
// action and a number only, so a crafted link cannot put words on the page.
func notice(q url.Values) string {
	n, err := strconv.ParseInt(q.Get("n"), 10, 64)
	if err != nil || n < 0 {
		return ""
	}
	switch action(q.Get("done")) {
	case actionReplay:
		return fmt.Sprintf("Replayed %d dead letter(s): back in the outbox, pending.", n)
	case actionPurge:
		return fmt.Sprintf("Purged %d dead letter(s).", n)
	}
	return ""
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func sortedPairs(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}
