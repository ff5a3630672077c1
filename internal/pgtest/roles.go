package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLStateInsufficientPrivilege is PostgreSQL's "permission denied".
const SQLStateInsufficientPrivilege = "42501"

// LoginAs creates a login role for t alone, member of group and nothing
// else, the way a deployment gives a process one of the NOLOGIN roles of the
// migrations, and returns dsn logging in as it. Its password is random: the
// test server may trust loopback connections, but one that checks passwords
// works too. The role is dropped when t ends.
//
// attributes are role attributes the login role gets itself (REPLICATION is
// not inherited through membership); they are written into the statement
// as they are.
func LoginAs(t testing.TB, dsn, group string, attributes ...string) string {
	t.Helper()
	ctx := context.Background()
	name := "outboxd_test_login_" + randomHex(6)
	password := randomHex(16)
	exec := func(stmt string) {
		t.Helper()
		admin, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("pgtest: %s: %v", strings.Fields(stmt)[0], err)
		}
	}
	// Roles take no bind parameters; both strings are hex made here.
	exec(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s IN ROLE %s",
		pgx.Identifier{name}.Sanitize(), password, strings.Join(attributes, " "), pgx.Identifier{group}.Sanitize()))
	t.Cleanup(func() { exec("DROP ROLE IF EXISTS " + pgx.Identifier{name}.Sanitize()) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// RequireRefused runs stmt on pool in a transaction that is always rolled
// back and fails t unless PostgreSQL refuses it for lack of privilege.
func RequireRefused(t testing.TB, pool *pgxpool.Pool, stmt string) {
	t.Helper()
	errRan := errors.New("the statement ran")
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), stmt); err != nil {
			return err
		}
		return errRan // roll back what it did
	})
	var pgErr *pgconn.PgError
	switch {
	case !errors.As(err, &pgErr):
		t.Errorf("%s must be refused, got %v", stmt, err)
	case pgErr.Code != SQLStateInsufficientPrivilege:
		t.Errorf("%s must be refused for lack of privilege, got SQLSTATE %s: %s", stmt, pgErr.Code, pgErr.Message)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
