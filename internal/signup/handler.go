package signup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/tracing"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/outbox/pgtx"
)

// Config configures a Handler.
type Config struct {
	// Argon2 are the password hashing parameters; zero fields take their
	// defaults. Defaults to DefaultParams.
	Argon2 Params
	// HashConcurrency bounds the password hashes computed at once; requests
	// beyond it queue. Defaults to runtime.GOMAXPROCS(0).
	HashConcurrency int
	// Logger receives the errors behind 5xx answers; never a password or a
	// hash. Defaults to slog.Default().
	Logger *slog.Logger
	// Created is incremented once per user created (not per replay).
	// Defaults to none.
	Created prometheus.Counter
	// Outbox writes the user.created message. Defaults to the zero
	// outbox.Writer, which wakes polling relays at commit.
	Outbox outbox.Writer
	// Notifier, when set, is told after each signup's commit, to wake
	// polling relays outside the transaction (an *outbox.Notifier; then
	// Outbox is WithoutNotify). Defaults to none.
	Notifier interface{ Notify() }
}

// Handler serves POST /v1/signup and GET /v1/users/{id}.
type Handler struct {
	pool     *pgxpool.Pool
	hasher   *Hasher
	logger   *slog.Logger
	created  prometheus.Counter
	outbox   outbox.Writer
	notifier interface{ Notify() }
}

// NewHandler returns the signup handlers over pool.
func NewHandler(pool *pgxpool.Pool, cfg Config) (*Handler, error) {
	if pool == nil {
		return nil, errors.New("signup: pool is nil")
	}
	hasher, err := NewHasher(cfg.Argon2, cfg.HashConcurrency)
	if err != nil {
		return nil, fmt.Errorf("signup: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{pool: pool, hasher: hasher, logger: logger, created: cfg.Created, outbox: cfg.Outbox, notifier: cfg.Notifier}, nil
}

// Signup handles POST /v1/signup: it answers 201 with the new user and a
// Location, or a problem. With an Idempotency-Key header, the first 201 is
// stored with the user and replayed to every retry.
//
// Only a 201 is stored. Every other answer leaves nothing behind: a 4xx
// from decoding or validation has no effect and a retry gets it again (or,
// fixed, goes through with the same key), a 409 comes from a rolled-back
// transaction (and a retry gets 409 again), and a 5xx is exactly what a
// retry should get a second chance at.
func (h *Handler) Signup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			// The client stopped sending mid-body.
			err = &DecodeError{msg: "the body could not be read"}
		}
		h.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var reqHash []byte
	if key != "" {
		reqHash = requestHash(r.Method, r.URL.Path, body)
		stored, err := lookupResponse(ctx, h.pool, key)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if stored != nil {
			h.replay(w, r, stored, reqHash)
			return
		}
	}
	req, err := DecodeRequest(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, err := req.Validate()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	passwordHash, err := h.hasher.Hash(ctx, in.Password)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	trace := Trace{CorrelationID: middleware.GetReqID(ctx), Traceparent: tracing.Traceparent(ctx)}
	resp, replayed, err := h.create(ctx, in, passwordHash, trace, key, reqHash)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if replayed {
		h.replay(w, r, resp, reqHash)
		return
	}
	if h.created != nil {
		h.created.Inc()
	}
	if h.notifier != nil {
		h.notifier.Notify()
	}
	for k, v := range resp.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// create runs the signup transaction: the user, its user.created message
// and, with a key, the stored response, in one batch. Without a key the
// batch is the whole transaction, one round trip. With a key, it claims the
// key first; when another request with the same key committed meanwhile, it
// returns that request's stored response and replayed = true, and creates
// nothing.
func (h *Handler) create(ctx context.Context, in Input, passwordHash string, trace Trace, key string, reqHash []byte) (resp *storedResponse, replayed bool, err error) {
	user, err := newUser(in)
	if err != nil {
		return nil, false, err
	}
	resp, err = createdResponse(user)
	if err != nil {
		return nil, false, err
	}
	b := &pgx.Batch{}
	if err := queueCreateUser(b, h.outbox, user, passwordHash, trace); err != nil {
		return nil, false, err
	}
	if key == "" {
		if err := h.pool.SendBatch(ctx, b).Close(); err != nil {
			return nil, false, createUserError(err)
		}
		return resp, false, nil
	}

	tx, err := h.pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("begin signup: %w", err)
	}
	defer pgtx.Rollback(ctx, tx)
	stored, err := claimKeyTx(ctx, tx, key, reqHash)
	if err != nil || stored != nil {
		return stored, stored != nil, err
	}
	resp.requestHash = reqHash
	queueSaveResponse(b, key, resp)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, false, createUserError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, fmt.Errorf("commit signup: %w", err)
	}
	return resp, false, nil
}

// replay answers with a stored response when the request is the one the key
// was first used for, and 422 otherwise.
func (h *Handler) replay(w http.ResponseWriter, r *http.Request, stored *storedResponse, reqHash []byte) {
	if string(stored.requestHash) != string(reqHash) {
		h.fail(w, r, errIdempotencyKeyReused)
		return
	}
	stored.write(w)
}

// GetUser handles GET /v1/users/{id}.
func (h *Handler) GetUser(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, errMalformedID)
		return
	}
	user, err := GetUser(r.Context(), h.pool, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := json.Marshal(user)
	if err != nil {
		h.fail(w, r, fmt.Errorf("encode user: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// createdResponse is the 201 answer to a signup of user.
func createdResponse(user User) (*storedResponse, error) {
	body, err := json.Marshal(user)
	if err != nil {
		return nil, fmt.Errorf("encode user: %w", err)
	}
	return &storedResponse{
		status: http.StatusCreated,
		body:   append(body, '\n'),
		headers: map[string]string{
			"Content-Type": "application/json",
			"Location":     "/v1/users/" + user.ID.String(),
		},
	}, nil
}

// idempotencyKey returns the request's Idempotency-Key, "" when it has none.
func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values(IdempotencyKeyHeader)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1 || !validIdempotencyKey(values[0]):
		return "", errBadIdempotencyKey
	}
	return values[0], nil
}
