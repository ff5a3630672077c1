package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// csrfCookie holds the browser's CSRF token; every form carries the same
// value in csrfField, which a page of another site cannot read.
const (
	csrfCookie = "outboxd_console_csrf"
	csrfField  = "csrf"
)

// csrfToken returns the request's CSRF token, setting a new random one in
// a cookie when the browser has none yet.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    token,
		Path:     c.cfg.PathPrefix + "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return token
}

// checkPost guards a state-changing handler: the request must be a POST
// from one of the console's pages, carrying the token of its cookie.
// Anything else is 403 (or 405 for another method).
func (c *Console) checkPost(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !sameOrigin(r) {
			http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		ck, err := r.Cookie(csrfCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue(csrfField))) != 1 || ck.Value == "" {
			http.Error(w, "forbidden: missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}
