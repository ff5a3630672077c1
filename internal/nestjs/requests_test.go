package nestjs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/profile"
)

// rpcError is the err of a NestJS reply as the client's observable fails
// with it.
type rpcError struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

// ask sends get_user_by_id for userID through the NestJS client and
// returns the line it printed for it.
func ask(t *testing.T, client *nodeProc, userID any) nodeLine {
	t.Helper()
	want, err := json.Marshal(userID)
	require.NoError(t, err)
	client.send(t, map[string]any{"userId": userID})
	return client.next(t, eventTimeout, "to answer for "+string(want), func(l nodeLine) bool {
		return bytes.Equal(l.UserID, want)
	})
}

// errorOf decodes the error a client line carries.
func errorOf(t *testing.T, l nodeLine) rpcError {
	t.Helper()
	require.NotEmpty(t, l.Error, "an error, got response %s", l.Response)
	var e rpcError
	require.NoError(t, json.Unmarshal(l.Error, &e), "error %s", l.Error)
	return e
}

// waitForProfile waits until the worker has made u's profile and returns
// it as GET /v1/users/{id}/profile returns it.
func waitForProfile(t *testing.T, s *stack, u user) []byte {
	t.Helper()
	id := uuid.MustParse(u.ID)
	var p profile.Profile
	require.Eventually(t, func() bool {
		var err error
		p, err = profile.Get(context.Background(), s.pool, id)
		return err == nil
	}, eventTimeout, 10*time.Millisecond, "the profile of %s is made", u.ID)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	return b
}

// checkRequests has a NestJS client ask for u's profile, an unknown user's
// and one with a number for an id: the profile, "user not found" and an
// error naming the problem.
func checkRequests(t *testing.T, s *stack, client *nodeProc, u user) {
	t.Helper()
	want := waitForProfile(t, s, u)
	got := ask(t, client, u.ID)
	require.Empty(t, got.Error)
	require.JSONEq(t, string(want), string(got.Response))

	e := errorOf(t, ask(t, client, uuid.NewString()))
	require.Equal(t, rpcError{Status: "error", Message: "user not found", Code: "not_found"}, e)

	e = errorOf(t, ask(t, client, 42))
	require.Equal(t, "bad_request", e.Code)
	require.Contains(t, e.Message, "data.userId must be a string")
}

// checkTransport starts a NestJS consumer and client with env, signs a
// user up, and checks that the consumer gets the event and the client the
// answers of checkRequests.
func checkTransport(t *testing.T, s *stack, env []string, email, name string) {
	t.Helper()
	consumer := startNode(t, "consumer", env...)
	client := startNode(t, "client", env...)
	u := s.signup(t, email, name)
	waitForEvent(t, consumer, u)
	checkRequests(t, s, client, u)
}
