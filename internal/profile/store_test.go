package profile_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/profile"
)

func TestCreateThenGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	id := insertUser(t, pool)

	before := time.Now().Add(-time.Minute)
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return profile.Create(ctx, tx, id, "Ada Lovelace")
	}))

	got, err := profile.Get(ctx, pool, id)
	require.NoError(t, err)
	require.True(t, got.CreatedAt.After(before), "created_at %s", got.CreatedAt)
	require.Equal(t, got.CreatedAt, got.UpdatedAt)
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	require.Equal(t, profile.Profile{UserID: id, DisplayName: "Ada Lovelace", Locale: "en"}, got,
		"the table's defaults for what the event does not say")
}

func TestCreateCommitsWithItsTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	id := insertUser(t, pool)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, profile.Create(ctx, tx, id, "Rolled back"))
	require.NoError(t, tx.Rollback(ctx))

	_, err = profile.Get(ctx, pool, id)
	require.ErrorIs(t, err, profile.ErrNotFound)
}

func TestCreateFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	id := insertUser(t, pool)
	create := func(userID uuid.UUID) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return profile.Create(ctx, tx, userID, "Twice")
		})
	}

	require.NoError(t, create(id))
	require.ErrorContains(t, create(id), "profile of user "+id.String(), "a second profile of one user")
	missing := uuid.New()
	require.ErrorContains(t, create(missing), "profile of user "+missing.String(), "a profile of no user")
}

func TestCreateSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	ada, grace := insertUser(t, pool), insertUser(t, pool)
	createSet := func(users []uuid.UUID, names []string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return profile.CreateSet(ctx, tx, users, names)
		})
	}

	require.ErrorContains(t, createSet([]uuid.UUID{ada, uuid.New()}, []string{"Ada", "Nobody"}), "insert 2 profiles",
		"a profile of no user fails the set")
	_, err := profile.Get(ctx, pool, ada)
	require.ErrorIs(t, err, profile.ErrNotFound, "a failed set writes none of its profiles")

	require.NoError(t, createSet([]uuid.UUID{ada, grace}, []string{"Ada", "Grace"}))
	for id, name := range map[uuid.UUID]string{ada: "Ada", grace: "Grace"} {
		got, err := profile.Get(ctx, pool, id)
		require.NoError(t, err)
		require.Equal(t, name, got.DisplayName)
		require.Equal(t, "en", got.Locale)
	}
	require.ErrorContains(t, createSet([]uuid.UUID{ada}, nil), "1 users but 0 names")
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	_, err := profile.Get(context.Background(), pool, insertUser(t, pool))
	require.ErrorIs(t, err, profile.ErrNotFound, "a user whose profile is not created yet")
	_, err = profile.Get(context.Background(), pool, uuid.New())
	require.ErrorIs(t, err, profile.ErrNotFound, "no such user")
}

func TestGetFails(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := profile.Get(ctx, pool, uuid.New())
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, profile.ErrNotFound)
}

// insertUser creates a user without a profile.
func insertUser(t *testing.T, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := pool.Exec(context.Background(),
		`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'User', 'not-a-hash')`,
		id, id.String()+"@example.com")
	require.NoError(t, err)
	return id
}
