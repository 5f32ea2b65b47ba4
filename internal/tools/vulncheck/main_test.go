package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestOnlyCalledVulnerabilitiesCountAndAcceptedOnesMustStillExist(t *testing.T) {
	stream := `{"config":{"scanner_name":"govulncheck"}}
{"osv":{"id":"GO-1"}}
{"finding":{"osv":"GO-1","fixed_version":"v1.2.0","trace":[{"module":"example.com/m","version":"v1.1.0"}]}}
{"finding":{"osv":"GO-2","fixed_version":"go1.26.9","trace":[{"module":"stdlib","function":"Get"},{"module":"github.com/signal-notify/signal","function":"main"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v0.4.0","trace":[{"module":"example.com/n","function":"Parse"}]}}
`
	called, err := calledVulns(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != 2 || called["GO-2"].Module != "stdlib" || called["GO-3"].Fixed != "v0.4.0" {
		t.Fatalf("called = %+v: want GO-2 and GO-3, not the merely imported GO-1", called)
	}
	for _, tc := range []struct {
		name     string
		accepted map[string]string
		status   int
		says     string
	}{
		{"nothing accepted", nil, 1, "VULNERABLE GO-2"},
		{"all accepted", map[string]string{"GO-2": "toolchain", "GO-3": "no fix"}, 0, "besides 2 accepted"},
		{"one left", map[string]string{"GO-2": "toolchain"}, 1, "VULNERABLE GO-3"},
		{"a stale acceptance", map[string]string{"GO-2": "a", "GO-3": "b", "GO-9": "fixed long ago"}, 1, "GO-9 is accepted but no longer found"},
	} {
		var out bytes.Buffer
		if got := judge(&out, called, tc.accepted); got != tc.status || !strings.Contains(out.String(), tc.says) {
			t.Errorf("%s: status %d, output %q; want %d and %q", tc.name, got, out.String(), tc.status, tc.says)
		}
	}
}
