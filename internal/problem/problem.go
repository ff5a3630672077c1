// Package problem writes RFC 9457 problem details (application/problem+json),
// the one error format of outboxd's HTTP API.
//
// A problem says what went wrong in words a client can show and a type a
// client can switch on. It never carries the request's values: a detail
// names the field and the rule, not what was sent, so a password typed into
// the wrong field is never echoed back.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem types of outboxd's API. They are URNs, stable identifiers meant to
// be compared, not dereferenced. TypeBlank is for problems fully described
// by their HTTP status.
const (
	TypeBlank             = "about:blank"
	TypeValidation        = "urn:outboxd:problem:validation-error"
	TypeEmailTaken        = "urn:outboxd:problem:email-taken"
	TypeIdempotencyReused = "urn:outboxd:problem:idempotency-key-reused"
	TypeRateLimited       = "urn:outboxd:problem:rate-limited"
)

// FieldError names one invalid field of a request and the rule it breaks.
type FieldError struct {
	// Field is the JSON name of the field, for example "email".
	Field string `json:"field"`
	// Detail says what the field must be, without repeating its value.
	Detail string `json:"detail"`
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	// Type identifies the kind of problem. Defaults to TypeBlank.
	Type string `json:"type"`
	// Title is a short summary of the kind of problem. Defaults to the
	// status text of Status.
	Title string `json:"title"`
	// Status is the HTTP status code. Defaults to 500.
	Status int `json:"status"`
	// Detail explains this occurrence of the problem. Defaults to none.
	Detail string `json:"detail,omitempty"`
	// Instance identifies this occurrence. Defaults to the request path.
	Instance string `json:"instance,omitempty"`
	// Errors names each invalid field (422 only). Defaults to none.
	Errors []FieldError `json:"errors,omitempty"`
}

// New returns a problem of type TypeBlank for status with detail.
func New(status int, detail string) Problem {
	return Problem{Type: TypeBlank, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Write sends p as the response to r, filling the defaults of its fields.
// Headers already set on w (Retry-After, for one) are kept.
func Write(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Type == "" {
		p.Type = TypeBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Instance == "" && r != nil && r.URL != nil {
		p.Instance = r.URL.Path
	}
	body, err := json.Marshal(p)
	if err != nil {
		// Only strings and ints: unreachable, but never answer with nothing.
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
