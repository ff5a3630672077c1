package api

import "net/http"

// responseWriter records what a handler wrote, for logs and metrics.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

// wrapResponseWriter returns w as a *responseWriter, wrapping it only once
// however many middlewares ask.
func wrapResponseWriter(w http.ResponseWriter) *responseWriter {
	if rw, ok := w.(*responseWriter); ok {
		return rw
	}
	return &responseWriter{ResponseWriter: w, status: http.StatusOK}
}

func (w *responseWriter) WriteHeader(status int) {
	// 1xx responses are interim: the final status is still to come.
	if !w.wroteHeader && status >= 200 {
		w.status = status
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer (Flush,
// deadlines).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
