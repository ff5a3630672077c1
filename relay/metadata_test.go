package relay

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeMetadataAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`,
		` { } `,
		`{"a": "b"}`,
		`{"correlation_id": "6f1c1f3e", "traceparent": "00-4bf9-00f0-01"}`,
		`{"a":"b","c":"d"}`,
		`{"quote": "say \"hi\""}`,
		`{"uni": "caf\u00e9 \ud83d\ude00"}`,
		`{"tab": "a\tb", "nl": "a\nb"}`,
		`{"empty": ""}`,
		`{"ünïcödé": "välüé"}`,
	} {
		var want map[string]string
		require.NoError(t, json.Unmarshal([]byte(in), &want), in)
		got := map[string]string{}
		require.NoError(t, decodeMetadata([]byte(in), got), in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{`{"a": 1}`, `{"a": "b"`, `{"a": "b"} x`, `[]`, `{"a" "b"}`, ``} {
		require.Error(t, decodeMetadata([]byte(in), map[string]string{}), in)
	}
}

func BenchmarkDecodeMetadata(b *testing.B) {
	in := []byte(`{"correlation_id": "6f1c1f3e-9a43-4a8e-a0f5-8d1f2f7e0a11", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			md := make(map[string]string, 5)
			_ = decodeMetadata(in, md)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var md map[string]string
			_ = json.Unmarshal(in, &md)
		}
	})
}
