package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/profilerpc"
)

// profileTimeout is the profile deadline of these tests: the default, so
// that the timeout test checks the bound as deployed.
const profileTimeout = profilerpc.TimeoutDefault

func TestProfileRoute(t *testing.T) {
	t.Parallel()
	for _, kind := range []broker.Kind{broker.KindNATS, broker.KindAMQP} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			t.Run("ExistingProfileIs200WithItsData", func(t *testing.T) {
				t.Parallel()
				b := setupProfiles(t, kind, profileTimeout)
				want := b.insertProfile(t, "Ann <ann@example.com>")
				r := b.do(t, http.MethodGet, "/v1/users/"+want.UserID.String()+"/profile", "", nil)
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
				require.Equal(t, "application/json", r.header.Get("Content-Type"))
				requireProfileBody(t, want, r.body)
			})
			t.Run("UnknownUserOrMissingProfileIs404", func(t *testing.T) {
				t.Parallel()
				b := setupProfiles(t, kind, profileTimeout)
				for _, id := range []uuid.UUID{uuid.New(), b.insertUser(t)} {
					path := "/v1/users/" + id.String() + "/profile"
					requireProblem(t, b.do(t, http.MethodGet, path, "", nil), http.StatusNotFound, path)
				}
			})
			t.Run("MalformedIDIs400", func(t *testing.T) {
				t.Parallel()
				b := setupProfiles(t, kind, profileTimeout)
				requireProblem(t, b.do(t, http.MethodGet, "/v1/users/nope/profile", "", nil), http.StatusBadRequest, "/v1/users/nope/profile")
			})
			t.Run("StoppedServiceIs504WithinTheDeadline", func(t *testing.T) {
				t.Parallel()
				b := setupProfiles(t, kind, profileTimeout)
				p := b.insertProfile(t, "Bo")
				path := "/v1/users/" + p.UserID.String() + "/profile"
				require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, path, "", nil).status)

				b.stopService()
				began := time.Now()
				r := b.do(t, http.MethodGet, path, "", nil)
				elapsed := time.Since(began)
				requireProblem(t, r, http.StatusGatewayTimeout, path)
				require.GreaterOrEqual(t, elapsed, profileTimeout)
				require.Less(t, elapsed, profileTimeout+profileTimeout/10, "answers within the deadline + 10%%")
			})
			t.Run("TwoHundredConcurrentRequestsGetTheirOwnProfiles", func(t *testing.T) {
				t.Parallel()
				// A generous deadline: this is about whose reply each
				// request gets, not how fast, on a machine shared with the
				// other tests.
				testConcurrentProfiles(t, setupProfiles(t, kind, 30*time.Second), 200)
			})
		})
	}
}

// TestProfileRouteWithoutRequestReplyIs501 is the API of a deployment whose
// broker has no request–reply.
func TestProfileRouteWithoutRequestReplyIs501(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := "/v1/users/" + uuid.NewString() + "/profile"
	requireProblem(t, b.do(t, http.MethodGet, path, "", nil), http.StatusNotImplemented, path)
}

// testConcurrentProfiles asks for n users' profiles at once: each answer is
// its own user's, so replies do not cross between requests.
func testConcurrentProfiles(t *testing.T, b *profileBundle, n int) {
	want := make([]profile.Profile, n)
	for i := range want {
		want[i] = b.insertProfile(t, fmt.Sprintf("User %d", i))
	}
	got := make([]response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range want {
		wg.Go(func() {
			<-start
			got[i] = b.do(t, http.MethodGet, "/v1/users/"+want[i].UserID.String()+"/profile", "", nil)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent profile requests answered in %s", n, time.Since(began).Round(time.Millisecond))
	for i := range want {
		require.Equal(t, http.StatusOK, got[i].status, "request %d: %s", i, got[i].body)
		requireProfileBody(t, want[i], got[i].body)
	}
}

// profileBundle is the API with a profile client, and a profile service on
// the same database and broker.
type profileBundle struct {
	*testBundle
	stopService func()
}

// setupProfiles starts the API with a profile client waiting timeout for
// replies and a profile service
// on kind's broker: an embedded NATS server of the test's own, or the
// shared RabbitMQ with a request topic of the test's own.
func setupProfiles(t *testing.T, kind broker.Kind, timeout time.Duration) *profileBundle {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	bcfg := broker.Config{Kind: kind, Logger: logger}
	topic := "profile.get.apitest" + randomHex(6)
	switch kind {
	case broker.KindNATS:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		url, stop, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
		require.NoError(t, err)
		t.Cleanup(stop)
		bcfg.URL = url
	case broker.KindAMQP:
		bcfg.URL = os.Getenv("OUTBOXD_TEST_AMQP_URL")
		t.Cleanup(func() { deleteAMQPQueue(t, bcfg.WithDefaults().URL, topic) })
	}

	client, err := profilerpc.NewClient(bcfg, profilerpc.ClientConfig{Timeout: timeout, RequestTopic: topic, Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return client.Ready(ctx) == nil }, 10*time.Second, 5*time.Millisecond)

	b := &profileBundle{testBundle: setup(t, func(c *api.Config) { c.Profiles = client })}
	b.stopService = startProfileService(t, b.pool, bcfg, topic)
	return b
}

// startProfileService runs the profile service in a router of its own;
// stop stops it, and is called when t ends at the latest.
func startProfileService(t *testing.T, pool *pgxpool.Pool, bcfg broker.Config, topic string) (stop func()) {
	t.Helper()
	srv, err := profilerpc.NewServer(pool, bcfg, profilerpc.ServerConfig{RequestTopic: topic, Logger: bcfg.Logger})
	require.NoError(t, err)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.AddHandlers(ctx, router))
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	<-router.Running()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, router.Close())
			require.NoError(t, <-done)
			require.NoError(t, srv.Close())
		})
	}
	t.Cleanup(stop)
	return stop
}

func (b *profileBundle) insertUser(t *testing.T) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := b.pool.Exec(context.Background(),
		`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'User', 'not-a-hash')`,
		id, id.String()+"@example.com")
	require.NoError(t, err)
	return id
}

func (b *profileBundle) insertProfile(t *testing.T, name string) profile.Profile {
	t.Helper()
	p := profile.Profile{UserID: b.insertUser(t)}
	require.NoError(t, b.pool.QueryRow(context.Background(), `
INSERT INTO profiles (user_id, display_name, bio, locale) VALUES ($1, $2, $3, 'de')
RETURNING avatar_url, created_at, updated_at`, p.UserID, name, "Bio of "+name).
		Scan(&p.AvatarURL, &p.CreatedAt, &p.UpdatedAt))
	p.DisplayName, p.Bio, p.Locale = name, "Bio of "+name, "de"
	return p
}

// requireProfileBody checks that body is exactly want as JSON.
func requireProfileBody(t *testing.T, want profile.Profile, body []byte) {
	t.Helper()
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, map[string]any{
		"user_id":      want.UserID.String(),
		"display_name": want.DisplayName,
		"bio":          want.Bio,
		"avatar_url":   want.AvatarURL,
		"locale":       want.Locale,
		"created_at":   want.CreatedAt.Format(time.RFC3339Nano),
		"updated_at":   want.UpdatedAt.Format(time.RFC3339Nano),
	}, got)
}

func deleteAMQPQueue(t *testing.T, url, queue string) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Logf("clean up RabbitMQ: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("clean up RabbitMQ: %v", err)
		return
	}
	defer ch.Close()
	_, _ = ch.QueueDelete(queue, false, false, false)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
