package signup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/problem"
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

func TestValidateNameRefusesControlFormatAndSeparatorCharacters(t *testing.T) {
	t.Parallel()
	const detail = "must not contain control characters, line or paragraph separators, " +
		"or invisible formatting characters (such as bidi controls or zero-width characters)"
	for _, tt := range []struct {
		class, name string
	}{
		// Cc: C0 controls (tab, CR and LF too, even where trimming would
		// have removed them), DEL and C1 controls.
		{"Cc NUL", "Ada\x00"},
		{"Cc BEL", "Ada\aLovelace"},
		{"Cc tab inside", "Ada\tLovelace"},
		{"Cc trailing LF", "Ada Lovelace\n"},
		{"Cc leading CR", "\rAda"},
		{"Cc CRLF header", "Eve\r\nBcc: all@example.com"},
		{"Cc DEL", "Ada\x7f"},
		{"Cc C1 NEL", "Ada\u0085Lovelace"},
		{"Cc C1 CSI", "Ada\u009b31m"},
		// Cf: bidi controls.
		{"Cf right-to-left override", "Eve \u202Etxt.exe"},
		{"Cf left-to-right embedding", "Eve \u202Aabc\u202C"},
		{"Cf right-to-left isolate", "Eve \u2067abc"},
		{"Cf first strong isolate", "Eve \u2068abc\u2069"},
		{"Cf left-to-right isolate", "\u2066Eve"},
		{"Cf right-to-left mark", "Eve\u200F"},
		{"Cf Arabic letter mark", "محمد\u061C"},
		// Cf: zero-width and invisible characters.
		{"Cf zero-width space", "Ada\u200BLovelace"},
		{"Cf zero-width non-joiner", "Ada\u200CLovelace"},
		{"Cf zero-width joiner", "Ada\u200DLovelace"},
		{"Cf byte order mark", "\uFEFFAda"},
		{"Cf soft hyphen", "Love\u00ADlace"},
		{"Cf tag character", "Ada\U000E0041"},
		// A ZWJ emoji sequence holds U+200D, so it is refused with the rest
		// of Cf: the rule is the category, not a list of uses.
		{"Cf ZWJ emoji sequence", "Ann \U0001F468\u200D\U0001F469\u200D\U0001F467"},
		// Zl and Zp, even at either end, where trimming would have removed
		// them.
		{"Zl line separator", "Eve\u2028Bcc: all@example.com"},
		{"Zl trailing line separator", "Eve\u2028"},
		{"Zp paragraph separator", "Eve\u2029Mallory"},
	} {
		t.Run(tt.class, func(t *testing.T) {
			t.Parallel()
			_, err := Request{Email: "ada@example.com", Name: tt.name, Password: "correct horse"}.Validate()
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, []problem.FieldError{{Field: "name", Detail: detail}}, verr.Fields)
		})
	}
}

func TestValidateNameAcceptsOrdinaryNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"张伟",
		"محمد",
		"Zoë Müller-Łukasz",
		"Ann 🎉",   // one code point; no zero-width joiner (see the ZWJ case above)
		"Ann 👍🏽",  // an emoji with a skin tone modifier (Sk)
		"Ann 🇫🇷",  // a flag: two regional indicators (So)
		"Ann 1️⃣", // a keycap: variation selector (Mn) and enclosing keycap (Me)
		"Δημήτρης Παπαδόπουλος",
		"O'Brien, Jr.",
		"Ada\u00a0Lovelace", // a no-break space is Zs, like the space
		"\u3000Ada\u3000",   // ideographic spaces (Zs) at the ends are trimmed
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, err := Request{Email: "ada@example.com", Name: name, Password: "correct horse"}.Validate()
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(name), in.Name)
		})
	}
}
