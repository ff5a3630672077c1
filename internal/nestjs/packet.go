package nestjs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// eventPacket is what a NestJS ClientProxy.emit(pattern, data) sends on
// NATS, RabbitMQ and Redis; Kafka carries data alone.
type eventPacket struct {
	Pattern string          `json:"pattern"`
	Data    json.RawMessage `json:"data"`
}

// replyPacket is a NestJS reply: the one packet a request gets, so it is
// always disposed (a reply without isDisposed never completes the
// client's observable). Exactly one of Response and Err is set. ID is the
// request's, except on RabbitMQ, where replies are matched by
// correlationId and carry none.
type replyPacket struct {
	Response   any       `json:"response,omitempty"`
	Err        *rpcError `json:"err,omitempty"`
	IsDisposed bool      `json:"isDisposed"`
	ID         string    `json:"id,omitempty"`
}

// rpcError is an error as NestJS's BaseRpcExceptionFilter sends it for an
// RpcException with a string, {status: 'error', message}, plus a code a
// client can switch on.
type rpcError struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

// The codes of rpcError.
const (
	// codeBadRequest is a request that is not a valid get_user_by_id:
	// resending it is pointless.
	codeBadRequest = "bad_request"
	// codeNotFound is a user id no user has.
	codeNotFound = "not_found"
	// codeProfilePending is a user whose profile the worker has not made
	// yet: retry shortly.
	codeProfilePending = "profile_pending"
	// codeUnavailable is a lookup that failed on outboxd's side: retry
	// later.
	codeUnavailable = "unavailable"
)

// errorf returns the rpcError of code with a formatted message.
func errorf(code, format string, args ...any) *rpcError {
	return &rpcError{Status: "error", Message: fmt.Sprintf(format, args...), Code: code}
}

// maxPatternDepth and maxPatternKeys are NestJS's limits on object
// patterns (transformPatternToRoute); deeper or wider ones become a marker.
const (
	maxPatternDepth = 5
	maxPatternKeys  = 20
)

// routeOf turns a packet's pattern into the route NestJS dispatches on, as
// its transformPatternToRoute does: a string or number as it is, an object
// as JSON with its keys sorted and no spaces, {"cmd":"get_user_by_id"}.
func routeOf(pattern json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(pattern)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("pattern is not JSON: %w", err)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case map[string]any:
		return objectRoute(v, 0), nil
	}
	return "", fmt.Errorf("pattern %s is neither a string nor an object", pattern)
}

func objectRoute(obj map[string]any, depth int) string {
	if depth > maxPatternDepth {
		return "[MAX_DEPTH_REACHED]"
	}
	if len(obj) > maxPatternKeys {
		return "[TOO_MANY_KEYS]"
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		part := `"` + escapeRoute(k) + `":`
		switch v := obj[k].(type) {
		case string:
			part += `"` + escapeRoute(v) + `"`
		case json.Number:
			part += v.String()
		case map[string]any:
			part += objectRoute(v, depth+1)
		case bool:
			part += strconv.FormatBool(v)
		case nil:
			part += "null"
		default:
			// An array: JavaScript's template literal joins its items with
			// commas; NestJS patterns have none in practice.
			b, _ := json.Marshal(v)
			part += strings.Trim(string(b), "[]")
		}
		parts = append(parts, part)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// escapeRoute escapes backslashes and double quotes, as NestJS does in
// object routes.
func escapeRoute(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
