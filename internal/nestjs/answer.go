package nestjs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/profile"
)

// PatternGetUserByID is the route of the one request the Service answers,
// what NestJS makes of { cmd: 'get_user_by_id' }: the NATS subject and
// Redis channel it listens on, and the pattern RabbitMQ requests carry.
const PatternGetUserByID = `{"cmd":"get_user_by_id"}`

// request is a NestJS request packet: {pattern, data, id}.
type request struct {
	pattern string
	userID  uuid.UUID
	id      string
}

// decodeRequest checks a request packet and returns it, or the error to
// answer with and whatever id it carried.
func decodeRequest(body []byte) (request, *rpcError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || !json.Valid(body) {
			return request{}, errorf(codeBadRequest, "malformed request: not JSON: %v", err)
		}
		return request{}, errorf(codeBadRequest, "malformed request: want a JSON object {pattern, data, id}, got %s", clip(body))
	}
	var req request
	if raw, ok := fields["id"]; ok {
		if err := json.Unmarshal(raw, &req.id); err != nil || req.id == "" {
			return request{}, errorf(codeBadRequest, "malformed request: id must be a non-empty string, got %s", clip(raw))
		}
	}
	raw, ok := fields["pattern"]
	if !ok || string(raw) == "null" {
		return req, errorf(codeBadRequest, "malformed request: no pattern (want %s)", PatternGetUserByID)
	}
	route, err := routeOf(raw)
	if err != nil {
		return req, errorf(codeBadRequest, "malformed request: %v", err)
	}
	if route != PatternGetUserByID {
		return req, errorf(codeBadRequest, "no handler for pattern %s: this service answers %s", route, PatternGetUserByID)
	}
	req.pattern = route
	if req.id == "" {
		return req, errorf(codeBadRequest, "malformed request: no id: a request needs one (ClientProxy.send sets it)")
	}
	raw, ok = fields["data"]
	if !ok || string(raw) == "null" {
		return req, errorf(codeBadRequest, "malformed request: no data (want {userId})")
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(raw, &data); err != nil {
		return req, errorf(codeBadRequest, "malformed request: data must be an object {userId}, got %s", clip(raw))
	}
	rawID, ok := data["userId"]
	if !ok {
		return req, errorf(codeBadRequest, "malformed request: data has no userId")
	}
	var userID string
	if err := json.Unmarshal(rawID, &userID); err != nil {
		return req, errorf(codeBadRequest, "malformed request: data.userId must be a string, got %s", clip(rawID))
	}
	id, err := uuid.Parse(userID)
	if err != nil {
		return req, errorf(codeBadRequest, "malformed request: data.userId %q is not a user id (a UUID)", userID)
	}
	req.userID = id
	return req, nil
}

// clip shortens a value quoted in an error.
func clip(b []byte) string {
	const limit = 64
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}

// responder answers get_user_by_id requests from the profiles table.
type responder struct {
	pool   *pgxpool.Pool
	cfg    Config
	logger *slog.Logger
}

// answer returns the reply to a request packet: the profile, or an error
// that says what went wrong. It never fails to reply.
func (r responder) answer(ctx context.Context, body []byte) replyPacket {
	req, rerr := decodeRequest(body)
	if rerr != nil {
		r.logger.WarnContext(ctx, "NestJS request refused", "error", rerr.Message)
		return replyPacket{Err: rerr, IsDisposed: true, ID: req.id}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.LookupTimeout)
	defer cancel()
	p, rerr := r.lookup(ctx, req.userID)
	if rerr != nil {
		return replyPacket{Err: rerr, IsDisposed: true, ID: req.id}
	}
	return replyPacket{Response: p, IsDisposed: true, ID: req.id}
}

// lookup returns the profile of userID as GET /v1/users/{id}/profile does.
// A user without one either does not exist or has a profile the worker
// has not made yet; the users table tells which.
func (r responder) lookup(ctx context.Context, userID uuid.UUID) (profile.Profile, *rpcError) {
	p, err := profile.Get(ctx, r.pool, userID)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, profile.ErrNotFound) {
		r.logger.WarnContext(ctx, "profile lookup failed; answering with an error", "error", err)
		return p, errorf(codeUnavailable, "profile lookup failed; retry later")
	}
	var exists bool
	if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&exists); err != nil {
		r.logger.WarnContext(ctx, "user lookup failed; answering with an error", "error", err)
		return p, errorf(codeUnavailable, "profile lookup failed; retry later")
	}
	if !exists {
		return p, errorf(codeNotFound, "user not found")
	}
	return p, errorf(codeProfilePending, "the profile of user %s is not made yet; retry shortly", userID)
}

// encode marshals a reply; on RabbitMQ without the id.
func encode(reply replyPacket, withID bool) []byte {
	if !withID {
		reply.ID = ""
	}
	b, err := json.Marshal(reply)
	if err != nil {
		// A profile always marshals; this would be a bug, still answered.
		b, _ = json.Marshal(replyPacket{Err: errorf(codeUnavailable, "cannot encode the reply"), IsDisposed: true, ID: reply.ID})
	}
	return b
}
