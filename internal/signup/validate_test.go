package signup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateNormalizes(t *testing.T) {
	t.Parallel()
	in, err := Request{Email: " \tAda@Example.com  ", Name: "  Ada Lovelace ", Password: "  spaced out  "}.Validate()
	require.NoError(t, err)
	require.Equal(t, Input{Email: "Ada@Example.com", Name: "Ada Lovelace", Password: "  spaced out  "}, in,
		"email and name are trimmed (case kept), the password is left as typed")
}

func TestValidateErrorsNameFieldsWithoutEchoingValues(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t"
	_, err := Request{Email: secret + " <x@y.z>", Name: strings.Repeat(secret, 20), Password: secret}.Validate()
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Fields, 3)
	for _, f := range verr.Fields {
		require.NotContains(t, f.Detail, secret)
	}
	require.Equal(t, "invalid fields: email, name, password", err.Error())
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	req, err := DecodeRequest([]byte(" {\"email\":\"a@b.c\",\"name\":\"A\",\"password\":\"p\"}\n\t "))
	require.NoError(t, err)
	require.Equal(t, Request{Email: "a@b.c", Name: "A", Password: "p"}, req)

	for _, body := range []string{``, `null`, `1`, `[]`, `{`, `{}{}`, `{} 1`, `{"x":1}`, `{"email":true}`} {
		_, err := DecodeRequest([]byte(body))
		var derr *DecodeError
		require.ErrorAs(t, err, &derr, "body %q", body)
	}

	// encoding/json alone matches names case-insensitively and keeps the
	// last of duplicates; the contract's field names are exact and single.
	for body, want := range map[string]string{
		`{"EMAIL":"a@b.c","name":"A","password":"p"}`:                    `unknown field "EMAIL": only email, name and password are accepted, in lower case`,
		`{"email":"a@b.c","Name":"A","password":"p"}`:                    `unknown field "Name"`,
		`{"email":"a@b.c","name":"A","password":"p","email":"x@y.z"}`:    `field "email" appears more than once`,
		`{"email":"a@b.c","name":"A","password":"p","pAsSwOrD":"other"}`: `unknown field "pAsSwOrD"`,
	} {
		_, err := DecodeRequest([]byte(body))
		var derr *DecodeError
		require.ErrorAs(t, err, &derr, "body %q", body)
		require.ErrorContains(t, err, want)
		require.NotContains(t, err.Error(), "a@b.c", "no field value in the message")
	}
}
