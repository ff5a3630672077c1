package signup

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzSignupDecode feeds arbitrary bodies to the decoder and the validator:
// they must never panic, must answer bad input with a 4xx, and must let
// through only input that the database accepts.
func FuzzSignupDecode(f *testing.F) {
	for _, seed := range []string{
		`{"email":"ada@example.com","name":"Ada","password":"correct horse"}`,
		` {"email":" Ada@Example.com ","name":" Ada ","password":"12345678"} `,
		`{"email":"Ada <ada@example.com>","name":"Ada","password":"correct horse"}`,
		`{"email":"ada@example.com\r\nBcc: x@y.z","name":"Ada","password":"correct horse"}`,
		`{"email":"\"a b\"@example.com","name":"Ada","password":"correct horse"}`,
		`{"email":"ada@example.com","name":"A\u0000","password":"correct horse"}`,
		`{"email":"ada@example.com","name":"\ud800","password":"\udfff\udfff\udfff\udfff"}`,
		`{"email":"ada@[127.0.0.1]","name":"Ada","password":"correct horse"}`,
		`{"email":1,"name":null,"password":[]}`,
		`{"EMAIL":"ada@example.com"}`,
		`{"email":"ada@example.com","extra":1}`,
		`{}{}`, `{}`, `[]`, `null`, `"x"`, `{`, ``, "\xff", `{"email":"\xff@example.com"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			requireClientError(t, err)
			return
		}
		in, err := req.Validate()
		if err != nil {
			verr, ok := err.(*ValidationError)
			if !ok || len(verr.Fields) == 0 {
				t.Fatalf("validation error %v of type %T names no field", err, err)
			}
			requireClientError(t, err)
			return
		}
		// Accepted input must fit the contract and the users table.
		switch {
		case len(in.Email) == 0 || len(in.Email) > MaxEmailBytes:
			t.Fatalf("accepted email of %d bytes", len(in.Email))
		case strings.ContainsAny(in.Email, "\r\n<>") || strings.ContainsFunc(in.Email, unicode.IsControl):
			t.Fatalf("accepted email %q", in.Email)
		case in.Email != strings.TrimSpace(in.Email) || in.Name != strings.TrimSpace(in.Name):
			t.Fatalf("accepted untrimmed input %q, %q", in.Email, in.Name)
		case !utf8.ValidString(in.Email) || !utf8.ValidString(in.Name):
			t.Fatalf("accepted invalid UTF-8 %q, %q", in.Email, in.Name)
		case utf8.RuneCountInString(in.Name) < 1 || utf8.RuneCountInString(in.Name) > MaxNameRunes:
			t.Fatalf("accepted name of %d runes", utf8.RuneCountInString(in.Name))
		case strings.ContainsFunc(in.Name, unicode.IsControl):
			t.Fatalf("accepted name %q", in.Name)
		case utf8.RuneCountInString(in.Password) < MinPasswordRunes || utf8.RuneCountInString(in.Password) > MaxPasswordRunes:
			t.Fatalf("accepted password of %d runes", utf8.RuneCountInString(in.Password))
		}
	})
}

func requireClientError(t *testing.T, err error) {
	t.Helper()
	p := problemFor(err)
	if p.Status < http.StatusBadRequest || p.Status >= http.StatusInternalServerError {
		t.Fatalf("bad input %v answered %d, want a 4xx", err, p.Status)
	}
}
