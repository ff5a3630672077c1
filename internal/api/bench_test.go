package api_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/signup"
)

// benchClients is the number of concurrent HTTP clients of
// BenchmarkSignupHTTP.
const benchClients = 16

// BenchmarkSignupHTTP measures signups per second through the whole HTTP
// stack (real handler, real PostgreSQL, default pool size) with 16 clients
// at once, with the default (OWASP) and with minimal argon2 cost.
//
//	go test -run '^$' -bench BenchmarkSignupHTTP -benchtime 10s ./internal/api/
func BenchmarkSignupHTTP(b *testing.B) {
	var seq atomic.Int64
	for _, bc := range []struct {
		name   string
		params signup.Params
	}{
		{"argon2=default", signup.DefaultParams},
		{"argon2=minimal", signup.MinimalParams},
	} {
		// One server per case, built once: b.Run calls its function again
		// for each b.N it tries.
		tb := setup(b, func(c *api.Config) { c.Argon2 = bc.params })
		tb.client.Transport.(*http.Transport).MaxIdleConnsPerHost = benchClients
		b.Run(bc.name, func(b *testing.B) {
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((benchClients + procs - 1) / procs)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					body := fmt.Sprintf(`{"email":"bench%d@example.com","name":"Bench User","password":"correct horse battery staple"}`, n)
					resp, err := tb.client.Post(tb.url+"/v1/signup", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signups/s")
			b.ReportMetric(float64(((benchClients+procs-1)/procs)*procs), "clients")
		})
	}
}
