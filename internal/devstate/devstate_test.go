package devstate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The database of the last serve --dev is used only while database.url is
// left at its default, and the state file stays readable by its owner only.
func TestDatabaseURLFollowsTheLastDevServeOnlyForTheDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signal", "dev.json")
	t.Setenv(EnvPath, path)
	const def = "postgres://postgres@127.0.0.1:5432/signal"
	const dev = "postgres://postgres:secret@127.0.0.1:5432/signal"
	if got := DatabaseURL(def, def); got != def {
		t.Fatalf("without a state: %q", got)
	}
	if err := SaveDatabaseURL(dev); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{def, dev},
		{"postgres://app@db:5432/signal", "postgres://app@db:5432/signal"},
	} {
		if got := DatabaseURL(tc.url, def); got != tc.want {
			t.Errorf("DatabaseURL(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
	s, err := Load()
	if err != nil || s.JWTSecret == "" || s.APIKey == "" || s.DatabaseURL != dev {
		t.Fatalf("state %+v, %v: the secrets are kept beside the URL", s, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, %v; want 0600", fi.Mode(), err)
	}
}

// Each clone has its own state, in its .dev folder, found from any folder
// below it; outside a clone it is the account's (issue 27, item 14).
func TestEachCloneHasItsOwnState(t *testing.T) {
	t.Setenv(EnvPath, "")
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	root := t.TempDir()
	a, b, other := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "other")
	for _, d := range []string{filepath.Join(a, "internal", "cli"), b, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(a, "go.mod"), []byte("// a clone\nmodule "+Module+"\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(b, "go.mod"), []byte("module "+Module+"\n"), 0o644)
	os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644)

	at := func(dir string) string {
		t.Helper()
		t.Chdir(dir)
		return Path()
	}
	if got, want := at(filepath.Join(a, "internal", "cli")), filepath.Join(a, ".dev", File); got != want {
		t.Errorf("in clone a's subfolder: %s, want %s", got, want)
	}
	if got, want := at(b), filepath.Join(b, ".dev", File); got != want {
		t.Errorf("in clone b: %s, want %s", got, want)
	}
	if got := at(other); filepath.Base(got) != "dev.json" || filepath.Dir(filepath.Dir(got)) != os.Getenv("XDG_STATE_HOME") {
		t.Errorf("outside a clone: %s, want the account's file", got)
	}

	// Two clones' serve --dev do not overwrite each other.
	at(a)
	if err := SaveDatabaseURL("postgres://postgres:pa@127.0.0.1:5432/signal"); err != nil {
		t.Fatal(err)
	}
	if err := SaveServer("http://127.0.0.1:8080", "127.0.0.1:9092", true); err != nil {
		t.Fatal(err)
	}
	at(b)
	SaveDatabaseURL("postgres://postgres:pb@127.0.0.1:5433/signal")
	at(a)
	sa, _ := Load()
	if sa.DatabaseURL != "postgres://postgres:pa@127.0.0.1:5432/signal" || sa.Server != "http://127.0.0.1:8080" {
		t.Errorf("clone a's state after clone b's serve --dev: %+v", sa)
	}
}

// The serve --dev instances are remembered, newest first and bounded; the
// one that runs the broker is the CLI's default server; only they are
// known (and get the development key).
func TestServersAreRememberedAndKnown(t *testing.T) {
	t.Setenv(EnvPath, filepath.Join(t.TempDir(), "dev.json"))
	SaveServer("http://127.0.0.1:8080", "127.0.0.1:9092", true)
	SaveServer("http://127.0.0.1:8081", "127.0.0.1:9092", false)
	s, _ := Load()
	if s.Server != "http://127.0.0.1:8080" || s.Brokers != "127.0.0.1:9092" || len(s.Servers) != 2 || s.Servers[0] != "http://127.0.0.1:8081" {
		t.Fatalf("state %+v", s)
	}
	for server, want := range map[string]bool{"http://127.0.0.1:8080": true, "http://127.0.0.1:8081/": true, "http://127.0.0.1:8082": false, "https://signal.example.com": false} {
		if s.Known(server) != want {
			t.Errorf("Known(%s) = %v", server, !want)
		}
	}
	var nilState *State
	if nilState.Known("http://127.0.0.1:8080") {
		t.Error("no state knows no server")
	}
	for i := 0; i < 20; i++ {
		SaveServer(fmt.Sprintf("http://127.0.0.1:%d", 9000+i), "", false)
	}
	if s, _ = Load(); len(s.Servers) != maxServers || s.Server != "http://127.0.0.1:8080" {
		t.Errorf("after 20 more: %d servers, default %s", len(s.Servers), s.Server)
	}
}

// make db-stop forgets the stopped cluster's URL, and only that one.
func TestForgetDatabaseForgetsOnlyTheStoppedCluster(t *testing.T) {
	t.Setenv(EnvPath, filepath.Join(t.TempDir(), "dev.json"))
	for _, tc := range []struct {
		url    string
		port   int
		forget bool
	}{
		{"postgres://postgres:p@127.0.0.1:5432/signal?sslmode=disable", 5432, true},
		{"postgres://postgres:p@localhost/signal", 5432, true},
		{"postgres://postgres:p@127.0.0.1:5433/signal", 5432, false},
		{"postgres://app@db.internal:5432/signal", 5432, false},
	} {
		SaveDatabaseURL(tc.url)
		if err := ForgetDatabase(tc.port); err != nil {
			t.Fatal(err)
		}
		s, _ := Load()
		if (s.DatabaseURL == "") != tc.forget {
			t.Errorf("%s after stopping port %d: %q", tc.url, tc.port, s.DatabaseURL)
		}
	}
}
