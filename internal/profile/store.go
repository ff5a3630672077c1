package profile

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	if err := CreateSet(ctx, tx, []uuid.UUID{userID}, []string{displayName}); err != nil {
		return fmt.Errorf("profile of user %s: %w", userID, err)
	}
	return nil
}

// CreateSet is Create for many users in one statement: the profile of
// userIDs[i] gets displayNames[i]. It fails as a whole, writing nothing,
// when any of them would fail alone.
func CreateSet(ctx context.Context, tx pgx.Tx, userIDs []uuid.UUID, displayNames []string) error {
	if len(userIDs) != len(displayNames) {
		return fmt.Errorf("insert profiles: %d users but %d names", len(userIDs), len(displayNames))
	}
	users := make([]pgtype.UUID, len(userIDs))
	for i, id := range userIDs {
		users[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO profiles (user_id, display_name) SELECT * FROM unnest($1::uuid[], $2::text[])`,
		users, displayNames)
	if err != nil {
		return fmt.Errorf("insert %d profiles: %w", len(userIDs), err)
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
