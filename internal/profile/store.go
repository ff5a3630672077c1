package profile

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Querier runs a query that returns at most one row: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Create inserts the profile of user userID with displayName and the
// table's defaults for the rest (no bio, no avatar, locale en). It runs in
// tx, so that the caller commits it together with its own rows (the
// worker's inbox record). It fails when the user does not exist or already
// has a profile.
func Create(ctx context.Context, tx pgx.Tx, userID uuid.UUID, displayName string) error {
	_, err := tx.Exec(ctx,
		`INSERT INTO profiles (user_id, display_name) VALUES ($1, $2)`,
		userID, displayName)
	if err != nil {
		return fmt.Errorf("insert profile of user %s: %w", userID, err)
	}
	return nil
}

// Get reads the profile of user userID. It returns an error wrapping
// ErrNotFound when the user has none.
func Get(ctx context.Context, db Querier, userID uuid.UUID) (Profile, error) {
	var p Profile
	err := db.QueryRow(ctx, `
SELECT user_id, display_name, bio, avatar_url, locale, created_at, updated_at
FROM profiles WHERE user_id = $1`, userID).
		Scan(&p.UserID, &p.DisplayName, &p.Bio, &p.AvatarURL, &p.Locale, &p.CreatedAt, &p.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Profile{}, fmt.Errorf("user %s: %w", userID, ErrNotFound)
	case err != nil:
		return Profile{}, fmt.Errorf("look up profile of user %s: %w", userID, err)
	}
	return p, nil
}
