// Package devstate keeps the secrets `signalctl serve --dev` generates, so
// the next --dev run reuses them and the other commands on the same machine
// (token, send, broadcast, tail) find them without copy-pasting — and the
// database it used, for the commands that read it (notifications, dedupe,
// deadletters, migrate, completion).
//
// Only development uses it: serve without --dev never reads it.
package devstate

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvPath overrides where the state file lives.
const EnvPath = "SIGNAL_DEV_STATE"

// State is what --dev generated.
type State struct {
	JWTSecret string `json:"jwtSecret"`
	APIKey    string `json:"apiKey"`
	// DatabaseURL is the database the last `serve --dev` used, password
	// included (make run's local cluster has one): the commands that read
	// the database use it when database.url is left at its default.
	DatabaseURL string `json:"databaseUrl,omitempty"`
}

// Path is $SIGNAL_DEV_STATE, else $XDG_STATE_HOME/signal/dev.json, else
// ~/.local/state/signal/dev.json.
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "signal", "dev.json")
}

// Load reads the state; (nil, nil) when there is none yet.
func Load() (*State, error) {
	b, err := os.ReadFile(Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dev state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("dev state %s is damaged (delete it to start afresh): %w", Path(), err)
	}
	return &s, nil
}

// LoadOrCreate returns the saved state, generating and saving missing secrets.
func LoadOrCreate() (*State, error) {
	s, err := Load()
	if err != nil {
		return nil, err
	}
	if s == nil {
		s = &State{}
	}
	if s.JWTSecret != "" && s.APIKey != "" {
		return s, nil
	}
	if s.JWTSecret == "" {
		s.JWTSecret = random(32)
	}
	if s.APIKey == "" {
		s.APIKey = "dev_" + random(24)
	}
	if err := save(s); err != nil {
		return nil, err
	}
	return s, nil
}

// SaveDatabaseURL records the database `serve --dev` uses.
func SaveDatabaseURL(url string) error {
	s, err := LoadOrCreate()
	if err != nil {
		return err
	}
	if s.DatabaseURL == url {
		return nil
	}
	s.DatabaseURL = url
	return save(s)
}

// DatabaseURL is url, or the database of the last `serve --dev` when url is
// database.url's default and there was one.
func DatabaseURL(url, def string) string {
	if url != def {
		return url
	}
	if s, _ := Load(); s != nil && s.DatabaseURL != "" {
		return s.DatabaseURL
	}
	return url
}

// save writes s, readable by this account only (it holds secrets).
func save(s *State) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	p := Path()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save dev state: %w", err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return fmt.Errorf("save dev state: %w", err)
	}
	return nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
