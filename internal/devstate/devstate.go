// Package devstate keeps what `signalctl serve --dev` generates and finds,
// so the next --dev run reuses it and the other commands started from the
// same clone find it without copy-pasting: the secrets (token, send,
// broadcast, tail), the database it used (notifications, dedupe,
// deadletters, migrate, completion, and a second serve --dev), its HTTP
// address and its embedded broker.
//
// Each clone has its own state, in its .dev folder (beside make run's
// PostgreSQL cluster): the clone is the nearest folder above the working
// directory that holds Signal's go.mod. Outside a clone (an installed
// signalctl) the state is one file per account. Only development uses it:
// serve without --dev never reads it.
package devstate

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EnvPath overrides where the state file lives.
const EnvPath = "SIGNAL_DEV_STATE"

// Module is the module path that marks a clone of Signal.
const Module = "github.com/signal-notify/signal"

// File is the state's name in a clone's .dev folder.
const File = "state.json"

// maxServers bounds the remembered serve --dev addresses.
const maxServers = 8

// State is what --dev generated and where it runs.
type State struct {
	JWTSecret string `json:"jwtSecret"`
	APIKey    string `json:"apiKey"`
	// DatabaseURL is the database the last `serve --dev` used, password
	// included (make run's local cluster has one): the commands that read
	// the database use it when database.url is left at its default.
	// `make db-stop` forgets it with the cluster.
	DatabaseURL string `json:"databaseUrl,omitempty"`
	// Server is the URL of the serve --dev that runs the embedded broker
	// (make run's), Brokers that broker: where the CLI goes while
	// client.server and kafka.brokers are left at their defaults.
	Server  string `json:"server,omitempty"`
	Brokers string `json:"brokers,omitempty"`
	// Servers are the serve --dev instances of this clone, newest first: the
	// development API key and tokens go to these only.
	Servers []string `json:"servers,omitempty"`
}

// Path is $SIGNAL_DEV_STATE; else .dev/state.json of the clone the working
// directory is in; else $XDG_STATE_HOME/signal/dev.json, else
// ~/.local/state/signal/dev.json.
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		if clone := FindClone(wd); clone != "" {
			return filepath.Join(clone, ".dev", File)
		}
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

// FindClone returns the nearest folder from dir up that holds Signal's
// go.mod, or "".
func FindClone(dir string) string {
	for {
		if isClone(dir) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isClone(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == Module
		}
	}
	return false
}

// Load reads the state; (nil, nil) when there is none yet.
func Load() (*State, error) { return LoadFile(Path()) }

// LoadFile reads the state at path; (nil, nil) when there is none.
func LoadFile(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dev state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("dev state %s is damaged (delete it to start afresh): %w", path, err)
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

// update applies fn to the saved state (created with its secrets if
// missing) and saves it when fn reports a change.
func update(fn func(*State) bool) error {
	s, err := LoadOrCreate()
	if err != nil {
		return err
	}
	if !fn(s) {
		return nil
	}
	return save(s)
}

// SaveDatabaseURL records the database `serve --dev` uses.
func SaveDatabaseURL(url string) error {
	return update(func(s *State) bool {
		changed := s.DatabaseURL != url
		s.DatabaseURL = url
		return changed
	})
}

// ForgetDatabase drops the saved database when it is on port of 127.0.0.1
// or localhost (make db-stop stopped that cluster): the commands then stop
// using a URL whose server is gone, or is another clone's by now.
func ForgetDatabase(port int) error {
	s, err := Load()
	if err != nil || s == nil || s.DatabaseURL == "" || !onLocalPort(s.DatabaseURL, port) {
		return err
	}
	s.DatabaseURL = ""
	return save(s)
}

// SaveServer records a serve --dev at url; primary when it runs the
// embedded broker at brokers (make run's), whose address becomes the CLI's
// default server.
func SaveServer(url, brokers string, primary bool) error {
	return update(func(s *State) bool {
		old := fmt.Sprint(*s)
		s.Servers = append([]string{url}, slices.DeleteFunc(s.Servers, func(x string) bool { return x == url })...)
		if len(s.Servers) > maxServers {
			s.Servers = s.Servers[:maxServers]
		}
		if primary {
			s.Server, s.Brokers = url, brokers
		}
		return fmt.Sprint(*s) != old
	})
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

// Known reports whether server is a serve --dev of this state: only those
// get the development API key and tokens.
func (s *State) Known(server string) bool {
	if s == nil {
		return false
	}
	n := strings.TrimRight(server, "/")
	return slices.ContainsFunc(s.Servers, func(x string) bool { return strings.TrimRight(x, "/") == n })
}

// save writes s, readable by this account only (it holds secrets).
func save(s *State) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	p := Path()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save dev state: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save dev state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("save dev state: %w", err)
	}
	return nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// onLocalPort reports whether a postgres URL names port on the loopback
// address (127.0.0.1 or localhost).
func onLocalPort(url string, port int) bool {
	rest, ok := strings.CutPrefix(url, "postgres://")
	if !ok {
		rest, ok = strings.CutPrefix(url, "postgresql://")
	}
	if !ok {
		return false
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if !strings.Contains(host, ":") {
		host += ":5432"
	}
	want := fmt.Sprintf(":%d", port)
	return host == "127.0.0.1"+want || host == "localhost"+want
}
