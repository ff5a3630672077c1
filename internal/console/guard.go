package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// contentSecurityPolicy allows the console's own script, style sheet and
// requests, and nothing else: no inline script or style, no frames, no
// form posted elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure wraps h with every check a request passes before it: a Host the
// console answers to, the password, and the security headers of every
// response.
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.hostAllowed(r.Host) {
			// A page of another site whose name resolves here (DNS
			// rebinding) gets nothing.
			http.Error(w, "unknown host: the console answers to IP addresses, localhost and the names in CONSOLE_HOSTS", http.StatusMisdirectedRequest)
			return
		}
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "same-origin")
		hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
		hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
		if c.cfg.Password != "" && !c.authorized(r) {
			hdr.Set("WWW-Authenticate", `Basic realm="outboxd console", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the console answers a request with this Host
// header. An IP address can only be reached as itself, and localhost only
// from this machine; any other name must be configured, since a rebinding
// attacker controls what their own name resolves to.
func (c *Console) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if host == "localhost" || net.ParseIP(host) != nil {
		return true
	}
	return slices.ContainsFunc(c.cfg.Hosts, func(name string) bool { return strings.EqualFold(name, host) })
}

// authorized checks the basic-auth credentials in constant time: hashing
// first makes the comparison's time independent of the lengths too.
func (c *Console) authorized(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	wantU, wantP := sha256.Sum256([]byte(c.cfg.User)), sha256.Sum256([]byte(c.cfg.Password))
	return subtle.ConstantTimeCompare(u[:], wantU[:])&subtle.ConstantTimeCompare(p[:], wantP[:]) == 1
}

// sameOrigin reports whether a state-changing request comes from one of
// the console's own pages, by what the browser says of its origin:
// Sec-Fetch-Site, else Origin, else Referer. A request saying nothing is
// refused: only a browser posts the console's forms.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}
