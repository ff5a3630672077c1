package nestjs

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/profile"
)

// decodedReply is a reply as a NestJS client reads it.
type decodedReply struct {
	Response   json.RawMessage `json:"response"`
	Err        *rpcError       `json:"err"`
	IsDisposed bool            `json:"isDisposed"`
	ID         *string         `json:"id"`
}

func newTestResponder(t *testing.T) responder {
	t.Helper()
	cfg := Config{Transport: TransportNATS}.WithDefaults()
	return responder{pool: pgtest.NewPool(t), cfg: cfg, logger: slog.New(slog.DiscardHandler)}
}

func replyTo(t *testing.T, r responder, body string, withID bool) decodedReply {
	t.Helper()
	var got decodedReply
	raw := encode(r.answer(context.Background(), []byte(body)), withID)
	require.NoError(t, json.Unmarshal(raw, &got), "reply %s", raw)
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &keys))
	for k := range keys {
		// NestJS 12 takes a reply with any other key for a foreign payload.
		require.Contains(t, []string{"response", "err", "isDisposed", "id"}, k, "reply %s", raw)
	}
	require.True(t, got.IsDisposed, "a reply without isDisposed never completes: %s", raw)
	return got
}

// TestMalformedRequestsGetAnError: every malformed NestJS packet gets an
// err reply naming the problem, with the request's id when it had one.
func TestMalformedRequestsGetAnError(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	const pattern = `{"cmd":"get_user_by_id"}`
	for _, tc := range []struct {
		name, body, message string
		id                  bool
	}{
		{"not JSON", `{"pattern":`, "malformed request: not JSON", false},
		{"garbage", `hello`, "malformed request: not JSON", false},
		{"not an object", `["pattern"]`, "want a JSON object {pattern, data, id}", false},
		{"no pattern", `{"data":{"userId":"` + uuid.NewString() + `"},"id":"abc"}`, "malformed request: no pattern", true},
		{"null pattern", `{"pattern":null,"data":{},"id":"abc"}`, "malformed request: no pattern", true},
		{"other pattern", `{"pattern":{"cmd":"get_order"},"data":{},"id":"abc"}`, `no handler for pattern {"cmd":"get_order"}`, true},
		{"array pattern", `{"pattern":[1],"data":{},"id":"abc"}`, "neither a string nor an object", true},
		{"numeric id", `{"pattern":` + pattern + `,"data":{},"id":7}`, "id must be a non-empty string", false},
		{"no id", `{"pattern":` + pattern + `,"data":{"userId":"` + uuid.NewString() + `"}}`, "malformed request: no id", false},
		{"no data", `{"pattern":` + pattern + `,"id":"abc"}`, "malformed request: no data", true},
		{"data not an object", `{"pattern":` + pattern + `,"data":"x","id":"abc"}`, "data must be an object {userId}", true},
		{"no userId", `{"pattern":` + pattern + `,"data":{"user_id":"x"},"id":"abc"}`, "data has no userId", true},
		{"userId a number", `{"pattern":` + pattern + `,"data":{"userId":42},"id":"abc"}`, "data.userId must be a string, got 42", true},
		{"userId not a UUID", `{"pattern":` + pattern + `,"data":{"userId":"ann"},"id":"abc"}`, `data.userId "ann" is not a user id`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := replyTo(t, r, tc.body, true)
			require.Empty(t, got.Response)
			require.NotNil(t, got.Err)
			require.Equal(t, "error", got.Err.Status)
			require.Equal(t, codeBadRequest, got.Err.Code)
			require.Contains(t, got.Err.Message, tc.message)
			if tc.id {
				require.NotNil(t, got.ID)
				require.Equal(t, "abc", *got.ID)
			} else {
				require.Nil(t, got.ID)
			}
		})
	}
}

// TestRequestAnswers: a user's profile as the API returns it, "user not
// found" for an unknown id, and a retryable error for a user whose profile
// is not made yet; the pattern may come as NestJS's object or as its
// route string, and RabbitMQ's replies carry no id.
func TestRequestAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestResponder(t)
	var withProfile, withoutProfile uuid.UUID
	require.NoError(t, r.pool.QueryRow(ctx,
		`INSERT INTO users (id, email, name, password_hash) VALUES (gen_random_uuid(), 'ann@example.com', 'Ann', 'x') RETURNING id`).Scan(&withProfile))
	require.NoError(t, r.pool.QueryRow(ctx,
		`INSERT INTO users (id, email, name, password_hash) VALUES (gen_random_uuid(), 'bo@example.com', 'Bo', 'x') RETURNING id`).Scan(&withoutProfile))
	_, err := r.pool.Exec(ctx, `INSERT INTO profiles (user_id, display_name) VALUES ($1, 'Ann')`, withProfile)
	require.NoError(t, err)
	p, err := profile.Get(ctx, r.pool, withProfile)
	require.NoError(t, err)
	want, err := json.Marshal(p)
	require.NoError(t, err)

	request := func(pattern string, id uuid.UUID) string {
		return `{"pattern":` + pattern + `,"data":{"userId":"` + id.String() + `"},"id":"0123456789abcdef01234"}`
	}
	got := replyTo(t, r, request(`{"cmd":"get_user_by_id"}`, withProfile), true)
	require.Nil(t, got.Err)
	require.JSONEq(t, string(want), string(got.Response))
	require.Equal(t, "0123456789abcdef01234", *got.ID)

	got = replyTo(t, r, request(`"{\"cmd\":\"get_user_by_id\"}"`, withProfile), false)
	require.Nil(t, got.Err)
	require.JSONEq(t, string(want), string(got.Response))
	require.Nil(t, got.ID, "RabbitMQ replies are matched by correlationId")

	got = replyTo(t, r, request(`{"cmd":"get_user_by_id"}`, uuid.New()), true)
	require.Equal(t, &rpcError{Status: "error", Message: "user not found", Code: codeNotFound}, got.Err)

	got = replyTo(t, r, request(`{"cmd":"get_user_by_id"}`, withoutProfile), true)
	require.Equal(t, codeProfilePending, got.Err.Code)
	require.Contains(t, got.Err.Message, "is not made yet; retry shortly")
}

// TestRouteOf: patterns become routes as NestJS's transformPatternToRoute
// makes them.
func TestRouteOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`"user_created"`:                         "user_created",
		`42`:                                     "42",
		`{"cmd":"get_user_by_id"}`:               `{"cmd":"get_user_by_id"}`,
		`{ "role": "user", "cmd": "get" }`:       `{"cmd":"get","role":"user"}`,
		`{"a":{"z":1,"b":true},"q":"say \"x\""}`: `{"a":{"b":true,"z":1},"q":"say \"x\""}`,
	} {
		got, err := routeOf(json.RawMessage(in))
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}
