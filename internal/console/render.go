package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"
	"unicode/utf8"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one template per page, each with the shared layout.
type pages struct {
	byName map[string]*template.Template
}

var pageNames = []string{"overview", "letters", "letter", "confirm", "message", "error"}

func parsePages() (*pages, error) {
	funcs := template.FuncMap{
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
		"bytes": func(n int) string { return byteSize(int64(n)) },
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse layout: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// view is what every page's template gets: the page's data and what the
// layout needs.
type view struct {
	Title  string
	Prefix string
	CSRF   string
	// Nav is the page the navigation marks as current.
	Nav  string
	Data any
}

// render writes page name with data, or a plain 500 when it fails.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	v := view{Title: title, Prefix: c.cfg.PathPrefix, CSRF: c.csrfToken(w, r), Nav: name, Data: data}
	var buf bytes.Buffer
	if err := c.pages.byName[name].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.logger.ErrorContext(r.Context(), "console: render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page with msg, which must hold no secret.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", http.StatusText(status), msg)
}

// staticFiles serves the embedded script and style sheet.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// payloadLimit bounds how much of a payload the detail page shows.
const payloadLimit = 64 << 10

// Payload is a message body as the detail page shows it.
type Payload struct {
	// Text is the body: indented when it is JSON, as text when it is
	// UTF-8, hexadecimal otherwise; cut at payloadLimit.
	Text string
	// Kind says which: "JSON", "text" or "binary (hex)".
	Kind string
	// Size is the body's full size in bytes.
	Size int
	// Cut is how many bytes of Text's source were left out.
	Cut int
}

func formatPayload(b []byte) Payload {
	p := Payload{Size: len(b)}
	var pretty bytes.Buffer
	switch {
	case len(b) <= 4*payloadLimit && json.Valid(b) && json.Indent(&pretty, b, "", "  ") == nil:
		p.Kind = "JSON"
		p.Text, p.Cut = cut(pretty.String(), payloadLimit)
		if p.Cut > 0 {
			p.Cut = max(len(b)-payloadLimit, 1)
		}
	case utf8.Valid(b):
		p.Kind = "text"
		p.Text, p.Cut = cut(string(b), payloadLimit)
	default:
		p.Kind = "binary (hex)"
		shown := b[:min(len(b), payloadLimit/2)]
		p.Text, p.Cut = fmt.Sprintf("% x", shown), len(b)-len(shown)
	}
	return p
}

// cut returns s's first n bytes, not splitting a character, and how many
// bytes it left out.
func cut(s string, n int) (string, int) {
	if len(s) <= n {
		return s, 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], len(s) - n
}
