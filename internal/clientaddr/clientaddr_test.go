package clientaddr

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		fwd     []string
		want    string
	}{
		{"no trusted proxies: headers ignored", nil, "10.1.1.1:5000", []string{"203.0.113.7"}, nil, "10.1.1.1"},
		{"untrusted peer: its X-Forwarded-For ignored", trusted, "198.51.100.9:5000", []string{"203.0.113.7"}, nil, "198.51.100.9"},
		{"untrusted peer: its Forwarded ignored", trusted, "198.51.100.9:5000", nil, []string{"for=203.0.113.7"}, "198.51.100.9"},
		{"trusted peer, one hop", trusted, "10.1.1.1:5000", []string{"203.0.113.7"}, nil, "203.0.113.7"},
		{"trusted peer, no header", trusted, "10.1.1.1:5000", nil, nil, "10.1.1.1"},
		{"rightmost untrusted hop, not the spoofed leftmost", trusted, "10.1.1.1:5000", []string{"1.2.3.4, 203.0.113.7, 10.2.2.2"}, nil, "203.0.113.7"},
		{"several headers are one list", trusted, "10.1.1.1:5000", []string{"1.2.3.4", "203.0.113.7"}, nil, "203.0.113.7"},
		{"every hop trusted: the leftmost", trusted, "10.1.1.1:5000", []string{"10.3.3.3, 10.2.2.2"}, nil, "10.3.3.3"},
		{"garbage hop stops at the proxy that wrote it", trusted, "10.1.1.1:5000", []string{"203.0.113.7, unknown"}, nil, "10.1.1.1"},
		{"X-Forwarded-For with a port", trusted, "10.1.1.1:5000", []string{"203.0.113.7:4711"}, nil, "203.0.113.7"},
		{"Forwarded, quoted IPv6 with port", trusted, "10.1.1.1:5000", nil, []string{`for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded wins over X-Forwarded-For", trusted, "10.1.1.1:5000", []string{"1.2.3.4"}, []string{"for=203.0.113.7;proto=https"}, "203.0.113.7"},
		{"Forwarded obfuscated identifier", trusted, "10.1.1.1:5000", nil, []string{"for=_hidden"}, "10.1.1.1"},
		{"IPv6 trusted peer", trusted, "[fd00::5]:5000", []string{"2001:db8::1"}, nil, "2001:db8::1"},
		{"IPv4-mapped trusted peer", trusted, "[::ffff:10.1.1.1]:5000", []string{"203.0.113.7"}, nil, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.fwd {
				h.Add("Forwarded", v)
			}
			got, ok := New(tt.trusted).Client(tt.peer, h)
			if !ok || got.String() != tt.want {
				t.Fatalf("Client(%s, %v) = %v, %v; want %s", tt.peer, h, got, ok, tt.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	var seen string
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr })
	r := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	r.Middleware(next).ServeHTTP(httptest.NewRecorder(), req)
	if seen != "203.0.113.7" {
		t.Fatalf("RemoteAddr behind a trusted proxy = %q, want 203.0.113.7", seen)
	}
	req.RemoteAddr = "192.0.2.1:40000"
	r.Middleware(next).ServeHTTP(httptest.NewRecorder(), req)
	if seen != "192.0.2.1:40000" && seen != "192.0.2.1" {
		t.Fatalf("RemoteAddr from an untrusted peer = %q, want the peer", seen)
	}
}
