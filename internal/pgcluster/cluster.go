package pgcluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options say where and how to run the cluster.
type Options struct {
	// Dir holds the data folder ("data") and the log ("postgres.log"). As
	// root the server runs as the postgres user; when that user cannot
	// enter Dir (a clone under /root), they live in a folder under its home
	// instead, which Dir/LOCATION names.
	Dir string
	// Port to listen on, on 127.0.0.1. 0 picks a free one.
	Port int
	// Durable keeps fsync on. Tests turn it off: a crash of a throwaway
	// cluster loses nothing of value, and it is several times faster.
	Durable bool
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	Dir  string
	Port int
	// Password of the postgres role over TCP (kept in Dir/password).
	Password string
	// URL of the "postgres" maintenance database (user postgres, with the password).
	URL string
}

// DatabaseURL is the address of database name on this cluster.
func (c *Cluster) DatabaseURL(name string) string {
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword("postgres", c.Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + name, RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Who may connect: only the account that started the cluster (and root).
//   - Unix socket: trust, but the socket sits in Dir, which is 0700, and is
//     itself 0700: no other local user can reach it.
//   - TCP on 127.0.0.1: scram-sha-256 with a generated password, kept in
//     Dir/password (0600), which every URL of the cluster carries. Another
//     local user can reach the port but not the password.
const hbaConf = `# Written by signalctl (internal/pgcluster) at every start.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
host replication postgres 127.0.0.1/32 scram-sha-256
`

// PasswordFile holds the postgres role's password in the cluster folder.
const PasswordFile = "password"

// Password reads the password of the cluster in dir (or where dir's
// LOCATION file says it lives).
func Password(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(resolve(dir), PasswordFile))
	if err != nil {
		return "", fmt.Errorf("the cluster's password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Start initialises Dir if it holds no cluster yet and starts the server.
// A cluster already running in Dir is reused.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("pgcluster: Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	// The server user may not be able to enter o.Dir: the cluster then
	// lives in a folder of its own, which dir's LOCATION file names.
	if dir, err = place(ctx, dir, owner); err != nil {
		return nil, err
	}
	// Only the owner may use the socket that lives here (see hbaConf).
	if err := os.Chmod(dir, 0o700); err != nil { // a folder made by an older signalctl was 0755
		return nil, err
	}
	password, err := ensurePassword(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		out, err := run(ctx, owner, "initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C")
		if err != nil {
			return nil, fmt.Errorf("initdb: %w\n%s", err, out)
		}
	}
	if err := writeHBA(data, owner); err != nil {
		return nil, err
	}
	if port, ok := runningPort(data); ok {
		c := &Cluster{Dir: dir, Port: port, Password: password}
		c.URL = c.DatabaseURL("postgres")
		if waitReady(ctx, port, 2*time.Second) == nil {
			// Started by an older signalctl, perhaps with trust: apply
			// the current rules.
			return c, secure(ctx, c)
		}
	}
	c, err := startServer(ctx, owner, dir, o)
	if err != nil {
		return nil, err
	}
	c.Password = password
	c.URL = c.DatabaseURL("postgres")
	return c, secure(ctx, c)
}

// startServer starts the server of the cluster in dir (its data folder
// ready) and waits until it answers.
func startServer(ctx context.Context, owner *user.User, dir string, o Options) (*Cluster, error) {
	port := o.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c unix_socket_permissions=0700 -c max_connections=300", port, dir)
	if !o.Durable {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	logFile := filepath.Join(dir, "postgres.log")
	out, err := run(ctx, owner, "pg_ctl", "-D", filepath.Join(dir, "data"), "-l", logFile, "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, lastLines(string(tail), 15))
	}
	if err := waitReady(ctx, port, 30*time.Second); err != nil {
		return nil, err
	}
	return &Cluster{Dir: dir, Port: port}, nil
}

// ensurePassword returns the cluster's password, generating it the first time.
func ensurePassword(dir string) (string, error) {
	if pw, err := Password(dir); err == nil && pw != "" {
		return pw, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b) // URL- and SQL-literal-safe
	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the cluster's password: %w", err)
	}
	return pw, nil
}

// writeHBA installs the access rules (hbaConf), readable by the server only.
func writeHBA(data string, owner *user.User) error {
	p := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(p, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if owner != nil {
		return chownTree(p, owner)
	}
	return nil
}

// secure sets the postgres role's password through the Unix socket (trust
// for the owner) and reloads the access rules.
func secure(ctx context.Context, c *Cluster) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", c.Dir, c.Port))
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect through the socket in %s: %w", c.Dir, err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"ALTER ROLE postgres PASSWORD '" + c.Password + "'", // base64url: no quote to escape
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("secure the cluster: %w", err)
		}
	}
	return nil
}

// Stop shuts the server down (fast mode: open sessions are cut).
func (c *Cluster) Stop() error {
	owner, err := serverUser()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.Dir) // pg_ctl runs from another folder
	if err != nil {
		return err
	}
	dir = resolve(dir)
	out, err := run(context.Background(), owner, "pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Running reports whether a cluster in dir is up, and its port.
func Running(dir string) (int, bool) {
	port, ok := runningPort(filepath.Join(resolve(dir), "data"))
	if !ok || waitReady(context.Background(), port, 200*time.Millisecond) != nil {
		return 0, false
	}
	return port, true
}

// runningPort reads the port of a running server from postmaster.pid.
func runningPort(data string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port, err == nil
}

func waitReady(ctx context.Context, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres on %s did not answer within %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serverUser is the account the server must run as: nil when not root.
func serverUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
	}
	return u, nil
}

func chownTree(dir string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func run(ctx context.Context, owner *user.User, name string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s not found on PATH: install the PostgreSQL server binaries, or set SIGNAL_DATABASE_URL to a running server", name)
	}
	var cmd *exec.Cmd
	if owner != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", owner.Username, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = os.TempDir() // the postgres user may not be able to enter the caller's folder
	// pg_ctl start leaves the server running with our stdout open: give it
	// files of its own so the command returns.
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return out, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
