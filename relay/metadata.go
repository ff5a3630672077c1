package relay

import (
	"encoding/json"
	"errors"
	"fmt"
)

// decodeMetadata adds the string pairs of a jsonb object to md. It is on the
// hot path, once per message: an object without escapes (the usual ids and
// trace headers) is sliced directly, about ten times faster than
// encoding/json, which handles everything else.
func decodeMetadata(b []byte, md map[string]string) error {
	if fastMetadata(b, md) {
		return nil
	}
	clear(md)
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decode metadata: %w", err)
	}
	for k, v := range m {
		md[k] = v
	}
	return nil
}

// errNotFast is internal to fastMetadata: the input needs the full decoder.
var errNotFast = errors.New("metadata needs the full decoder")

// fastMetadata decodes a flat object of strings without escapes, the form
// PostgreSQL prints jsonb in ({"a": "b", "c": "d"}), and reports whether it
// could. It leaves partial results in md when it could not.
func fastMetadata(b []byte, md map[string]string) bool {
	p := metadataParser{b: b}
	if p.skipSpace(); !p.eat('{') {
		return false
	}
	if p.skipSpace(); p.eat('}') {
		return p.end()
	}
	for {
		k, err := p.str()
		if err != nil {
			return false
		}
		if p.skipSpace(); !p.eat(':') {
			return false
		}
		p.skipSpace()
		v, err := p.str()
		if err != nil {
			return false
		}
		md[k] = v
		p.skipSpace()
		if p.eat(',') {
			p.skipSpace()
			continue
		}
		if p.eat('}') {
			return p.end()
		}
		return false
	}
}

type metadataParser struct {
	b []byte
	i int
}

func (p *metadataParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *metadataParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (p *metadataParser) str() (string, error) {
	if !p.eat('"') {
		return "", errNotFast
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		case c == '\\' || c < 0x20:
			return "", errNotFast
		}
		p.i++
	}
	return "", errNotFast
}

func (p *metadataParser) end() bool {
	p.skipSpace()
	return p.i == len(p.b)
}
