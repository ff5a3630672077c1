package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
)

// exampleID names one example of the document: the operation, the status
// of the response it illustrates and its name ("" for a media type's single
// example).
type exampleID struct {
	method, path string
	status       int
	name         string
}

func (e exampleID) String() string {
	return fmt.Sprintf("%s %s %d %s", e.method, e.path, e.status, e.name)
}

// exampleScenario is how to make the API give the answer one example shows.
// The request body is the request example of the same name when the
// document has one, and body otherwise.
type exampleScenario struct {
	id exampleID
	// server returns the API to ask. Defaults to setup(t).
	server func(t *testing.T) *testBundle
	// before runs first, as what the example presupposes (a user that
	// exists, a key already used).
	before func(t *testing.T, b *testBundle) string
	// target is the request path; it gets before's result. Defaults to
	// id.path.
	target func(prior string) string
	body   string
	header map[string]string
	// invalidRequest says the request breaks the document's request
	// schema on purpose (a 400 or 413 answers it).
	invalidRequest bool
}

const (
	docUserID    = "019a6f2e-5b7c-7d3e-8f41-2a6b9c0d1e2f" // the id in the document's examples
	docUnknownID = "019a6f2e-0000-7000-8000-000000000000"
)

// openAPIScenarios covers every example of the document.
func openAPIScenarios(t *testing.T, doc *openapi3.T) []exampleScenario {
	signup := func(status int, name string) exampleID {
		return exampleID{http.MethodPost, "/v1/signup", status, name}
	}
	user := func(status int, name string) exampleID {
		return exampleID{http.MethodGet, "/v1/users/{id}", status, name}
	}
	profile := func(status int, name string) exampleID {
		return exampleID{http.MethodGet, "/v1/users/{id}/profile", status, name}
	}
	ada := requestExample(t, doc, "created")
	signUpAda := func(t *testing.T, b *testBundle) string {
		return requireCreated(t, b.signup(t, ada, nil)).ID
	}
	at := func(path string) func(string) string { return func(string) string { return path } }
	return []exampleScenario{
		{id: signup(201, "created")},
		{id: signup(400, "malformed-json"), body: `{"email":`, invalidRequest: true},
		{id: signup(400, "unknown-field"), body: strings.TrimSuffix(ada, "}") + `,"admin":true}`, invalidRequest: true},
		{id: signup(400, "bad-idempotency-key"), body: ada, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, invalidRequest: true},
		{id: signup(409, "email-taken"), before: signUpAda},
		// A schema cannot bound a body's size: the 64 KiB are in the
		// operation's description and its 413.
		{id: signup(413, "too-large"), body: `{"email":"ada@example.com","name":"` + strings.Repeat("x", 70<<10) + `","password":"correct horse"}`},
		{id: signup(422, "invalid-fields")},
		{
			id: signup(422, "idempotency-key-reused"),
			before: func(t *testing.T, b *testBundle) string {
				return requireCreated(t, b.signup(t, ada, map[string]string{"Idempotency-Key": "k-1"})).ID
			},
			header: map[string]string{"Idempotency-Key": "k-1"},
		},
		{
			id:     signup(429, "rate-limited"),
			server: func(t *testing.T) *testBundle { return setup(t, func(c *api.Config) { c.SignupRateLimit = new(1) }) },
			before: signUpAda,
			body:   ada,
		},
		{
			id: signup(503, "timeout"),
			server: func(t *testing.T) *testBundle {
				return setup(t, func(c *api.Config) { c.RequestTimeout = time.Nanosecond })
			},
			body: ada,
		},
		{id: user(200, "created"), before: signUpAda, target: func(id string) string { return "/v1/users/" + id }},
		{id: user(400, "malformed-id"), target: at("/v1/users/not-a-uuid"), invalidRequest: true},
		{id: user(404, "unknown-id"), target: at("/v1/users/" + docUnknownID)},
		{
			id:     profile(200, "created"),
			server: func(t *testing.T) *testBundle { return setupProfiles(t, broker.KindNATS, 10*time.Second).testBundle },
			before: func(t *testing.T, b *testBundle) string {
				id := signUpAda(t, b)
				// The worker's own statement: the name from the event, the
				// table's defaults for the rest.
				_, err := b.pool.Exec(context.Background(), `INSERT INTO profiles (user_id, display_name) VALUES ($1, $2)`, id, "Ada Lovelace")
				require.NoError(t, err)
				return id
			},
			target: func(id string) string { return "/v1/users/" + id + "/profile" },
		},
		{id: profile(400, "malformed-id"), target: at("/v1/users/not-a-uuid/profile"), invalidRequest: true,
			server: func(t *testing.T) *testBundle { return setupProfiles(t, broker.KindNATS, 10*time.Second).testBundle }},
		{id: profile(404, "unknown-id"), target: at("/v1/users/" + docUnknownID + "/profile"),
			server: func(t *testing.T) *testBundle { return setupProfiles(t, broker.KindNATS, 10*time.Second).testBundle }},
		{id: profile(501, "no-request-reply"), target: at("/v1/users/" + docUserID + "/profile")},
		{
			id: profile(504, "no-reply"),
			server: func(t *testing.T) *testBundle {
				b := setupProfiles(t, broker.KindNATS, 300*time.Millisecond)
				b.stopService()
				return b.testBundle
			},
			target: at("/v1/users/" + docUserID + "/profile"),
		},
		{id: exampleID{http.MethodGet, "/healthz", 200, ""}},
		{id: exampleID{http.MethodGet, "/readyz", 200, ""}},
	}
}

// TestOpenAPIExamplesAreWhatTheAPIAnswers sends each example's request to
// the real API on a database of its own (and the profile service over an
// embedded NATS where the route needs it), validates request and answer
// against the document with kin-openapi, and requires the answer to be the
// example: same status, same body but for generated ids and times.
func TestOpenAPIExamplesAreWhatTheAPIAnswers(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(loader.Context))
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)

	scenarios := openAPIScenarios(t, doc)
	var covered []string
	for _, sc := range scenarios {
		covered = append(covered, sc.id.String())
	}
	var documented []string
	for _, id := range documentExamples(doc) {
		documented = append(documented, id.String())
	}
	require.ElementsMatch(t, documented, covered, "every example of the document has a scenario, and only those")

	for _, sc := range scenarios {
		t.Run(sc.id.String(), func(t *testing.T) {
			t.Parallel()
			runExampleScenario(t, doc, router, sc)
		})
	}
}

func runExampleScenario(t *testing.T, doc *openapi3.T, router routers.Router, sc exampleScenario) {
	ctx := context.Background()
	b := setup
	if sc.server != nil {
		b = func(t testing.TB, _ ...func(*api.Config)) *testBundle { return sc.server(t.(*testing.T)) }
	}
	bundle := b(t)
	prior := ""
	if sc.before != nil {
		prior = sc.before(t, bundle)
	}
	path := sc.id.path
	if sc.target != nil {
		path = sc.target(prior)
	}
	body := sc.body
	if body == "" && sc.id.method == http.MethodPost {
		body = requestExample(t, doc, sc.id.name)
	}
	newRequest := func() *http.Request {
		req, err := http.NewRequest(sc.id.method, bundle.url+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range sc.header {
			req.Header.Set(k, v)
		}
		return req
	}

	req := newRequest()
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "the document has the route of %s %s", sc.id.method, path)
	require.Equal(t, sc.id.path, route.Path)
	// Formats (uuid, date-time) are asserted, not just annotations.
	opts := &openapi3filter.Options{IncludeResponseStatus: true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()}}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(ctx, in)
	if sc.invalidRequest {
		require.Error(t, err, "the document's schema refuses this request too")
	} else {
		require.NoError(t, err, "the request conforms to the document")
	}

	resp, err := bundle.client.Do(newRequest())
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, sc.id.status, resp.StatusCode, "body: %s", got)

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	out.SetBodyBytes(got)
	require.NoError(t, openapi3filter.ValidateResponse(ctx, out), "the answer conforms to the document")

	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.NoError(t, err)
	want := responseExample(t, doc, sc.id, mediaType)
	if !strings.HasSuffix(mediaType, "json") {
		require.Equal(t, want, string(got))
		return
	}
	var gotValue map[string]any
	require.NoError(t, json.Unmarshal(got, &gotValue))
	wantValue := jsonObject(t, want)
	// Generated values: the schema has checked their format.
	for _, k := range []string{"id", "user_id", "created_at", "updated_at"} {
		if _, ok := wantValue[k]; ok {
			require.Contains(t, gotValue, k)
			gotValue[k] = wantValue[k]
		}
	}
	require.Equal(t, wantValue, gotValue, "the answer is the example")
	if sc.id.status == http.StatusCreated {
		var u struct{ ID string }
		require.NoError(t, json.Unmarshal(got, &u))
		require.Equal(t, "/v1/users/"+u.ID, resp.Header.Get("Location"))
	}
}

// documentExamples lists every response example of doc.
func documentExamples(doc *openapi3.T) []exampleID {
	var out []exampleID
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				var status int
				_, _ = fmt.Sscan(code, &status)
				for _, mt := range resp.Value.Content {
					if mt.Example != nil {
						out = append(out, exampleID{method, path, status, ""})
					}
					for name := range mt.Examples {
						out = append(out, exampleID{method, path, status, name})
					}
				}
			}
		}
	}
	return out
}

// requestExample is the JSON of signup's request example name, or "" when
// there is none.
func requestExample(t *testing.T, doc *openapi3.T, name string) string {
	t.Helper()
	mt := doc.Paths.Find("/v1/signup").Post.RequestBody.Value.Content.Get("application/json")
	ex, ok := mt.Examples[name]
	if !ok {
		return ""
	}
	b, err := json.Marshal(ex.Value.Value)
	require.NoError(t, err)
	return string(b)
}

// responseExample is the example id names for mediaType: a string for
// text, the JSON otherwise.
func responseExample(t *testing.T, doc *openapi3.T, id exampleID, mediaType string) string {
	t.Helper()
	resp := doc.Paths.Find(id.path).GetOperation(id.method).Responses.Status(id.status)
	require.NotNil(t, resp, "%s is documented", id)
	mt := resp.Value.Content.Get(mediaType)
	require.NotNil(t, mt, "%s answers %s", id, mediaType)
	var v any
	if id.name == "" {
		v = mt.Example
	} else {
		ex, ok := mt.Examples[id.name]
		require.True(t, ok, "%s is an example of %s", id, mediaType)
		v = ex.Value.Value
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func jsonObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.NewDecoder(bytes.NewReader([]byte(s))).Decode(&v))
	return v
}

// TestOpenAPIIsServed: /openapi.json is the embedded document, as JSON.
func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, http.MethodGet, "/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, string(api.OpenAPI), string(r.body))
	require.NotEmpty(t, r.header.Get(api.RequestIDHeader))
}
