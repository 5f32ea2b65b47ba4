package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/signal-notify/signal/internal/devstate"
)

// The development API key and tokens go to this clone's serve --dev only:
// another server pointed at gets no credential the user did not give, and
// a refused development key is named as such (issue 27, item 5).
func TestTheDevelopmentKeyGoesOnlyToTheDevServers(t *testing.T) {
	var mu sync.Mutex
	var seen []string // Authorization headers each server got
	answer := func(status int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Host+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			if status == 401 {
				w.Write([]byte(`{"error":{"code":"unauthorized","message":"the API key is not valid"}}`))
				return
			}
			w.Write([]byte(`{"clients":[],"total":0,"nextCursor":null}`))
		}))
	}
	dev, other, stale := answer(200), answer(200), answer(401)
	defer dev.Close()
	defer other.Close()
	defer stale.Close()

	state := isolate(t)
	b, _ := json.Marshal(devstate.State{JWTSecret: longSecret, APIKey: "dev_the-development-key-123", Server: dev.URL,
		Servers: []string{dev.URL, stale.URL}})
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// No --server: the clone's serve --dev, with its key.
	run(t, "clients").wantCode(t, 0)
	// Another server: refused before anything is sent.
	r := run(t, "clients", "--server", other.URL)
	r.wantCode(t, 1)
	r.wantStderr(t, "no API key for "+other.URL+": set SIGNAL_API_KEY or --api-key (the development key goes only to this clone's serve --dev")
	// tail mints no token for it either.
	r = run(t, "tail", "--room", "signal/notification/u1", "--server", other.URL)
	r.wantCode(t, 1)
	r.wantStderr(t, "no token for "+other.URL+": pass --token")
	// A key the user gives goes where the user says.
	run(t, "clients", "--server", other.URL, "--api-key", "key-the-user-gave-0123456789").wantCode(t, 0)
	// A development key refused by a dev server of old is named.
	r = run(t, "clients", "--server", stale.URL)
	r.wantCode(t, 1)
	r.wantStderr(t, "the API key is not valid — it was the development API key of serve --dev (in "+state+"): pass this server's key with --api-key or SIGNAL_API_KEY")

	mu.Lock()
	defer mu.Unlock()
	otherHost := strings.TrimPrefix(other.URL, "http://")
	for _, s := range seen {
		if strings.HasPrefix(s, otherHost+" ") && strings.Contains(s, "dev_the-development-key") {
			t.Errorf("the development key reached another server: %s", s)
		}
	}
	want := []string{strings.TrimPrefix(dev.URL, "http://") + " Bearer dev_the-development-key-123",
		otherHost + " Bearer key-the-user-gave-0123456789"}
	for _, w := range want {
		found := false
		for _, s := range seen {
			found = found || s == w
		}
		if !found {
			t.Errorf("no request %q among %q", w, seen)
		}
	}
}
