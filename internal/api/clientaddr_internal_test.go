package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientAddressHonoursXForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", " 2001:db8:ffff::/48 "})
	require.NoError(t, err)
	tests := []struct {
		name   string
		remote string
		xff    []string // one entry per header line
		want   string
	}{
		{"untrusted peer: header ignored", "203.0.113.9:1", []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer spoofing a trusted chain", "203.0.113.9:1", []string{"198.51.100.1, 10.1.1.1"}, "203.0.113.9"},
		{"trusted peer without header", "10.0.0.5:1", nil, "10.0.0.5"},
		{"one proxy", "10.0.0.5:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"single trusted address", "192.0.2.7:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-forged entries left of the real one", "10.0.0.5:1", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"chain of proxies", "10.0.0.5:1", []string{"198.51.100.1, 10.9.9.9, 10.8.8.8"}, "198.51.100.1"},
		{"several header lines", "10.0.0.5:1", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"only proxies", "10.0.0.5:1", []string{"10.9.9.9, 10.8.8.8"}, "10.9.9.9"},
		{"entry with port", "10.0.0.5:1", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 client", "10.0.0.5:1", []string{"[2001:db8:1:2::7]:4711"}, "2001:db8:1:2::/64"},
		{"IPv6 trusted proxy", "[2001:db8:ffff:1::1]:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped proxy", "[::ffff:10.0.0.5]:1", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"garbage stops the walk at the last trusted hop", "10.0.0.5:1", []string{"198.51.100.1, unknown, 10.9.9.9"}, "10.9.9.9"},
		{"empty header", "10.0.0.5:1", []string{""}, "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tt.want, clientAddress(r, trusted))
		})
	}
}

func TestParseTrustedProxiesRejectsGarbage(t *testing.T) {
	t.Parallel()
	got, err := parseTrustedProxies([]string{"10.1.2.3/8", "::1", ""})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.0/8", got[0].String(), "prefixes are masked")
	require.Equal(t, "::1/128", got[1].String())
	require.Len(t, got, 2, "blank entries are skipped")
	_, err = parseTrustedProxies([]string{"10.0.0.0/8", "proxy.internal"})
	require.ErrorContains(t, err, `"proxy.internal"`)
}
