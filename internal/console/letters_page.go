package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// filterForm is a Filter as the list's form submits it, kept as typed so
// that the form shows it back and links carry it on.
type filterForm struct {
	Source, Handler, Topic, Key, MessageID, Since, Until string
}

// datetimeLocal is the format of an <input type="datetime-local">, read as
// UTC (the page says so).
const datetimeLocal = "2006-01-02T15:04"

func readFilterForm(v url.Values) filterForm {
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return filterForm{Source: get("source"), Handler: get("handler"), Topic: get("topic"), Key: get("key"),
		MessageID: get("message_id"), Since: get("since"), Until: get("until")}
}

// values encodes f for a link, without its empty fields.
func (f filterForm) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"source": f.Source, "handler": f.Handler, "topic": f.Topic,
		"key": f.Key, "message_id": f.MessageID, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Query is f as a query string, for links.
func (f filterForm) Query() string { return f.values().Encode() }

// Describe says in words what f selects.
func (f filterForm) Describe() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("source", f.Source)
	add("handler", f.Handler)
	add("topic", f.Topic)
	add("key", f.Key)
	add("message id", f.MessageID)
	add("failed since", f.Since)
	add("failed before", f.Until)
	if len(parts) == 0 {
		return "every dead letter"
	}
	return "dead letters with " + strings.Join(parts, ", ")
}

// filter parses f; its error says which field is wrong.
func (f filterForm) filter() (Filter, error) {
	out := Filter{Source: f.Source, Handler: f.Handler, Topic: f.Topic, Key: f.Key}
	if f.Source != "" && f.Source != SourceRelay && f.Source != SourceHandler {
		return Filter{}, formError("source: relay, handler or empty for both")
	}
	if f.MessageID != "" {
		id, err := uuid.Parse(f.MessageID)
		if err != nil {
			return Filter{}, formError("message id: not a UUID")
		}
		out.MessageID = id
	}
	var err error
	if out.Since, err = parseTime(f.Since); err != nil {
		return Filter{}, formError("failed since: " + err.Error())
	}
	if out.Until, err = parseTime(f.Until); err != nil {
		return Filter{}, formError("failed before: " + err.Error())
	}
	return out, nil
}

type formError string

func (e formError) Error() string { return string(e) }

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{datetimeLocal, "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, formError("want YYYY-MM-DDTHH:MM (UTC)")
}

// lettersPage is the list page's content.
type lettersPage struct {
	Form    filterForm
	Letters []Letter
	// Next is the link to the next page, "" on the last; FirstPage the
	// link to the first.
	Next, FirstPage string
	// ReplayAll and PurgeAll link to the confirmation of acting on
	// everything the filter matches.
	ReplayAll, PurgeAll string
	// Back is where an action on the selection returns.
	Back string
	// First is whether this is the first page.
	First bool
	// KeyOnlyRelay says the key search left the handlers' dead letters out.
	KeyOnlyRelay bool
	Notice       string
	// Totals are the dead letters per handler of the last snapshot.
	Totals []HandlerRow
}

func (c *Console) serveLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := readFilterForm(q)
	f, err := form.filter()
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Bad filter: "+err.Error())
		return
	}
	cursor, err := parseCursor(q.Get("before"))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Bad page position: start again from the first page.")
		return
	}
	letters, next, err := c.store.list(r.Context(), f, cursor, c.cfg.PageSize)
	if err != nil {
		c.logger.ErrorContext(r.Context(), "console: list dead letters", "error", err)
		c.fail(w, r, http.StatusInternalServerError, "Cannot list the dead letters: "+oneLine(err.Error()))
		return
	}
	page := lettersPage{Form: form, Letters: letters, First: cursor.FailedAt.IsZero(),
		KeyOnlyRelay: f.Key != "", Notice: notice(q), Totals: c.overview(r).DeadLetters}
	list := c.cfg.PathPrefix + "/deadletters?" + form.Query()
	page.FirstPage, page.Back = list, list
	for _, a := range []action{actionReplay, actionPurge} {
		v := form.values()
		v.Set("action", string(a))
		link := c.cfg.PathPrefix + "/deadletters/confirm?" + v.Encode()
		if a == actionReplay {
			page.ReplayAll = link
		} else {
			page.PurgeAll = link
		}
	}
	if !next.FailedAt.IsZero() {
		v := form.values()
		v.Set("before", next.String())
		page.Next = c.cfg.PathPrefix + "/deadletters?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "letters", "Dead letters", page)
}

// letterPage is the detail page's content.
type letterPage struct {
	Letter  Letter
	Payload Payload
	// Metadata is the letter's metadata in key order.
	Metadata [][2]string
}

func (c *Console) serveLetter(w http.ResponseWriter, r *http.Request) {
	ref, err := parseRef(r.PathValue("ref"))
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	l, err := c.store.get(r.Context(), ref)
	switch {
	case err != nil:
		c.fail(w, r, http.StatusInternalServerError, "Cannot read the dead letter: "+oneLine(err.Error()))
		return
	case l == nil:
		c.fail(w, r, http.StatusNotFound, "There is no such dead letter: it was replayed or purged, or never was.")
		return
	}
	c.render(w, r, http.StatusOK, "letter", "Dead letter "+l.Ref(), letterPage{
		Letter: *l, Payload: formatPayload(l.Payload), Metadata: sortedPairs(l.Metadata)})
}
