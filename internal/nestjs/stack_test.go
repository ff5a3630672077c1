package nestjs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/nestjs"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/relay"
)

// eventTimeout bounds how long a test waits for an event or a reply.
const eventTimeout = 30 * time.Second

// stack is outboxd for one test: its own database, an embedded NATS
// JetStream as the broker, the API, the relay and a worker running the
// profile and nestjs handlers with the NestJS side of the profile service.
type stack struct {
	pool *pgxpool.Pool
	api  string
}

// embeddedNATS starts a NATS server of t's own (JetStream on, free port).
func embeddedNATS(t *testing.T) string {
	t.Helper()
	url, stop, err := broker.StartEmbeddedNATS(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	return url
}

// startStack runs outboxd with the NestJS transport ncfg until t ends,
// brokering its own events on natsURL.
func startStack(t *testing.T, natsURL string, ncfg nestjs.Config) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	bcfg := broker.Config{Kind: broker.KindNATS, URL: natsURL, AckTimeout: 5 * time.Second}

	pub, err := broker.NewPublisher(ctx, bcfg)
	require.NoError(t, err)
	r, err := relay.New(pool, pub, relay.Config{})
	require.NoError(t, err)
	em, err := nestjs.NewEmitter(ncfg)
	require.NoError(t, err)
	services := []worker.Service{em}
	if nestjs.ServesRequests(ncfg.Transport) {
		svc, err := nestjs.NewService(pool, ncfg)
		require.NoError(t, err)
		services = append(services, svc)
	}
	w, err := worker.New(pool, func(ctx context.Context, group string) (message.Subscriber, error) {
		return broker.NewSubscriber(ctx, bcfg, group)
	}, nil, worker.Config{
		Handlers:             []string{worker.HandlerProfile, worker.HandlerNestJS},
		NestJS:               em,
		Services:             services,
		RetryInitialInterval: 100 * time.Millisecond,
		RetryMaxInterval:     time.Second,
	})
	require.NoError(t, err)
	done := make(chan error, 2)
	go func() { done <- r.Run(ctx) }()
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			require.NoError(t, <-done)
		}
		require.NoError(t, pub.Close())
	})
	require.Eventually(t, func() bool { return w.Ready(ctx) == nil }, eventTimeout, 10*time.Millisecond, "the worker runs")

	srv, err := api.New(pool, api.Config{Argon2: signup.MinimalParams, SignupRateLimit: new(0)})
	require.NoError(t, err)
	httpSrv := httptest.NewServer(srv.Handler())
	t.Cleanup(httpSrv.Close)
	return &stack{pool: pool, api: httpSrv.URL}
}

// user is what a signup returns.
type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// signup signs a user up through the API.
func (s *stack) signup(t *testing.T, email, name string) user {
	t.Helper()
	body, err := json.Marshal(map[string]string{"email": email, "name": name, "password": "correct horse battery"})
	require.NoError(t, err)
	resp, err := http.Post(s.api+"/v1/signup", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var u user
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&u))
	return u
}

// userCreated is the data of a user_created event.
type userCreated struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// waitForEvent returns the user_created event of u that consumer printed.
func waitForEvent(t *testing.T, consumer *nodeProc, u user) userCreated {
	t.Helper()
	var ev userCreated
	consumer.next(t, eventTimeout, "to receive user_created of "+u.ID, func(l nodeLine) bool {
		if l.Event != "user_created" {
			return false
		}
		require.NoError(t, json.Unmarshal(l.Data, &ev))
		return ev.UserID == u.ID
	})
	require.Equal(t, u.Email, ev.Email)
	require.Equal(t, u.Name, ev.Name)
	require.False(t, ev.CreatedAt.IsZero(), "created_at is set")
	return ev
}
