package profilerpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lookupProfile reads the profile of user id; found is false when there is
// none.
func lookupProfile(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (p Profile, found bool, err error) {
	err = pool.QueryRow(ctx, `
SELECT user_id, display_name, bio, avatar_url, locale, created_at, updated_at
FROM profiles WHERE user_id = $1`, id).
		Scan(&p.UserID, &p.DisplayName, &p.Bio, &p.AvatarURL, &p.Locale, &p.CreatedAt, &p.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Profile{}, false, nil
	case err != nil:
		return Profile{}, false, fmt.Errorf("look up profile of user %s: %w", id, err)
	}
	return p, true, nil
}
