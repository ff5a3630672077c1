package console

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Handler serves the console under Config.PathPrefix, behind its guards
// (see secure and checkPost).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.serveOverview)
	mux.HandleFunc("GET /api/overview", c.serveOverviewJSON)
	mux.HandleFunc("GET /deadletters", c.serveLetters)
	mux.HandleFunc("GET /deadletters/confirm", c.serveConfirmMatching)
	mux.HandleFunc("GET /deadletters/{ref}", c.serveLetter)
	mux.HandleFunc("POST /deadletters/replay", c.checkPost(c.actOnSelection(actionReplay)))
	mux.HandleFunc("POST /deadletters/purge", c.checkPost(c.actOnSelection(actionPurge)))
	mux.HandleFunc("POST /deadletters/replay-matching", c.checkPost(c.actOnMatching(actionReplay)))
	mux.HandleFunc("POST /deadletters/purge-matching", c.checkPost(c.actOnMatching(actionPurge)))
	mux.HandleFunc("GET /messages", c.serveMessage)
	mux.Handle("GET /static/", http.StripPrefix("/static", staticFiles()))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	prefix := c.cfg.PathPrefix
	if prefix == "" {
		return c.secure(mux)
	}
	stripped := http.StripPrefix(prefix, mux)
	return c.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == prefix:
			http.Redirect(w, r, prefix+"/", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, prefix+"/"):
			stripped.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
}

func (c *Console) serveOverview(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "overview", "Overview", struct {
		Overview
		RefreshMillis int64
	}{c.overview(r), c.cfg.RefreshInterval.Milliseconds()})
}

func (c *Console) serveOverviewJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(c.overview(r))
}
