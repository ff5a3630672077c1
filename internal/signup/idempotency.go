package signup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// IdempotencyKeyHeader names the request header that makes a signup safe to
// retry.
const IdempotencyKeyHeader = "Idempotency-Key"

// MaxIdempotencyKeyLen bounds an Idempotency-Key (the idempotency_keys
// table's CHECK agrees).
const MaxIdempotencyKeyLen = 255

// errIdempotencyKeyReused is a key sent again with a different request.
var errIdempotencyKeyReused = errors.New("idempotency key reused with a different request")

// storedResponse is the first response to a request with an Idempotency-Key,
// replayed byte for byte to its retries.
type storedResponse struct {
	requestHash []byte
	status      int
	body        []byte
	headers     map[string]string
}

// write replays the response on w.
func (s *storedResponse) write(w http.ResponseWriter) {
	for k, v := range s.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(s.status)
	_, _ = w.Write(s.body)
}

// requestHash fingerprints what a key promises to stand for: the same
// method, path and body, byte for byte.
func requestHash(method, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

// validIdempotencyKey reports whether key is 1–255 visible ASCII characters.
func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// lookupResponse returns the committed response stored under key, or nil.
// It lets a retry skip the password hash; claimKeyTx is what makes
// concurrent requests safe.
func lookupResponse(ctx context.Context, db querier, key string) (*storedResponse, error) {
	s := &storedResponse{}
	err := db.QueryRow(ctx,
		`SELECT request_hash, status, response_body, headers FROM idempotency_keys WHERE key = $1`, key,
	).Scan(&s.requestHash, &s.status, &s.body, &s.headers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	return s, nil
}

// claimKeyTx inserts key's row in tx before any other work, so that of
// several requests with one key only one proceeds: the others wait on the
// primary key until the first transaction ends. If it committed, they get
// its stored response (non-nil); if it rolled back, one of them claims the
// key in turn.
func claimKeyTx(ctx context.Context, tx pgx.Tx, key string, hash []byte) (*storedResponse, error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO idempotency_keys (key, request_hash, status, response_body) VALUES ($1, $2, 0, '')
		 ON CONFLICT (key) DO NOTHING`, key, hash)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	// Read committed: this new statement sees the row the winner committed.
	stored, err := lookupResponse(ctx, tx, key)
	if err != nil {
		return nil, err
	}
	if stored == nil {
		return nil, errors.New("claim idempotency key: conflicting row vanished")
	}
	return stored, nil
}

// queueSaveResponse queues on b the recording of resp, the response to the
// request that claimed key.
func queueSaveResponse(b *pgx.Batch, key string, resp *storedResponse) {
	b.Queue(`UPDATE idempotency_keys SET status = $2, response_body = $3, headers = $4 WHERE key = $1`,
		key, resp.status, resp.body, resp.headers)
}

// MinKeyTTL is the shortest IDEMPOTENCY_KEY_TTL: a client retrying a signup
// within the hour always gets the first response.
const MinKeyTTL = time.Hour

// PruneIdempotencyKeys deletes the idempotency keys stored more than ttl ago
// (at least MinKeyTTL) and returns how many it deleted: a request retried
// with such a key later is a new request. It runs the
// prune_idempotency_keys function of the migrations, which the API role may
// execute although it may not DELETE from idempotency_keys.
func PruneIdempotencyKeys(ctx context.Context, db querier, ttl time.Duration) (int64, error) {
	if ttl < MinKeyTTL {
		return 0, fmt.Errorf("prune idempotency keys: ttl %s is below the minimum %s", ttl, MinKeyTTL)
	}
	var n int64
	if err := db.QueryRow(ctx, `SELECT prune_idempotency_keys($1)`, ttl).Scan(&n); err != nil {
		return 0, fmt.Errorf("prune idempotency keys older than %s: %w", ttl, err)
	}
	return n, nil
}
