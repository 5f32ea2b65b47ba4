package pgcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
)

// locationFile, in a cluster folder whose data lives elsewhere, holds the
// folder that has it.
const locationFile = "LOCATION"

// relocationRoot is where clusters go that the server user cannot keep in
// the folder asked for: under that user's home (tests point it elsewhere).
var relocationRoot = func(owner *user.User) string {
	if owner.HomeDir != "" && owner.HomeDir != "/" && owner.HomeDir != "/nonexistent" {
		return filepath.Join(owner.HomeDir, "signal-dev")
	}
	return "/var/tmp/signal-dev-postgres"
}

// place returns the folder to keep the cluster of dir in: dir itself, or,
// when the server runs as another user (we are root) who cannot enter dir —
// a clone in root's home, which is 0700 — a folder of that user's, named
// after dir's path. dir then gets a LOCATION file naming it, which Running
// and Stop follow.
func place(ctx context.Context, dir string, owner *user.User) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	if owner == nil {
		return dir, nil
	}
	if err := chownTree(dir, owner); err != nil {
		return "", err
	}
	if canEnter(ctx, owner, dir) {
		_ = os.Remove(filepath.Join(dir, locationFile)) // a stale note from another setup
		return dir, nil
	}
	sum := sha256.Sum256([]byte(dir))
	root := relocationRoot(owner)
	moved := filepath.Join(root, filepath.Base(filepath.Dir(dir))+"-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(moved, 0o700); err != nil {
		return "", fmt.Errorf("the %s user cannot enter %s, and creating %s for the cluster failed: %w", owner.Username, dir, moved, err)
	}
	if err := chownTree(root, owner); err != nil {
		return "", err
	}
	note := moved + "\n"
	if err := os.WriteFile(filepath.Join(dir, locationFile), []byte(note), 0o644); err != nil {
		return "", err
	}
	return moved, nil
}

// resolve follows dir's LOCATION file, if any.
func resolve(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, locationFile))
	if err != nil {
		return dir
	}
	if moved := strings.TrimSpace(string(b)); moved != "" {
		return moved
	}
	return dir
}

// canEnter reports whether u may enter and write dir: every folder above it
// must let u through, which is what fails for a clone under /root.
func canEnter(ctx context.Context, u *user.User, dir string) bool {
	test, err := exec.LookPath("test")
	if err != nil {
		return true // cannot tell: let initdb say
	}
	cmd := exec.CommandContext(ctx, "runuser", "-u", u.Username, "--", test, "-x", dir, "-a", "-w", dir)
	cmd.Dir = os.TempDir()
	return cmd.Run() == nil
}
