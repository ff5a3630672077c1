package signup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxBodyBytes bounds a signup request body; a larger one is answered 413.
const MaxBodyBytes = 64 << 10

// Request is a signup request as sent, before validation.
type Request struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// DecodeError is a body that is not exactly one JSON object of a Request's
// fields. Its message describes the body's shape, never its content.
type DecodeError struct {
	msg string
}

// Error returns what is wrong with the body.
func (e *DecodeError) Error() string { return e.msg }

// DecodeRequest decodes body, which must hold exactly one JSON object with no
// field other than those of Request, each named exactly (encoding/json
// alone would take "EMAIL" for "email") and at most once (it would keep the
// last of two). Trailing whitespace is allowed. Any other body is a
// *DecodeError.
func DecodeRequest(body []byte) (Request, error) {
	var req Request
	// A bare null, number or string would decode into a zero Request
	// without error: insist on an object.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return Request{}, &DecodeError{msg: "the body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, &DecodeError{msg: describeJSONError(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{}, &DecodeError{msg: "the body must hold a single JSON object and nothing after it"}
	}
	if err := checkFieldNames(body); err != nil {
		return Request{}, err
	}
	return req, nil
}

// requestFields are the JSON names of Request's fields.
var requestFields = map[string]bool{"email": true, "name": true, "password": true}

// checkFieldNames reads the keys of body, a JSON object that decoded
// without error, and refuses a name that is not exactly one of
// requestFields or that appears twice.
func checkFieldNames(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return &DecodeError{msg: describeJSONError(err)}
	}
	seen := make(map[string]bool, len(requestFields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &DecodeError{msg: describeJSONError(err)}
		}
		name, _ := tok.(string)
		switch {
		case !requestFields[name]:
			return &DecodeError{msg: fmt.Sprintf("unknown field %q: only email, name and password are accepted, in lower case", truncateName(name))}
		case seen[name]:
			return &DecodeError{msg: fmt.Sprintf("field %q appears more than once", name)}
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return &DecodeError{msg: describeJSONError(err)}
		}
	}
	return nil
}

// truncateName shortens a field name quoted in an error.
func truncateName(name string) string {
	if len(name) > 64 {
		return name[:64] + "…"
	}
	return name
}

// describeJSONError rewords encoding/json's errors, which may quote pieces of
// the input, into messages that quote at most a field name.
func describeJSONError(err error) string {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the body is not valid JSON (it ends too early)"
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %q must be a string", typeErr.Field)
	case errors.As(err, &typeErr):
		return "the body must be a JSON object"
	}
	// json.Decoder reports an unknown field only as a formatted string.
	const unknownPrefix = `json: unknown field "`
	if msg := err.Error(); len(msg) > len(unknownPrefix) && msg[:len(unknownPrefix)] == unknownPrefix {
		name := msg[len(unknownPrefix) : len(msg)-1]
		return fmt.Sprintf("unknown field %q: only email, name and password are accepted", truncateName(name))
	}
	return "the body is not a valid signup request"
}
