package devstate

import (
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
