package cli_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	// Nothing here may reach a database or a broker: these point nowhere.
	nowhere := []string{"--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable"}
	cases := []struct {
		args []string
		path string // the command named in "Run '… --help' for usage."
		want string
	}{
		{[]string{"frobnicate"}, "signalctl", `unknown command "frobnicate" for "signalctl"`},
		{[]string{"--no-such-flag", "version"}, "signalctl", "unknown flag: --no-such-flag"},
		{[]string{"produce", "--bogus"}, "signalctl produce", "unknown flag: --bogus\n"},
		{[]string{"produce", "--recipient", "u1"}, "signalctl produce", "unknown flag: --recipient (did you mean --recipients?)"},
		{[]string{"tail", "--servr", "http://x"}, "signalctl tail", "unknown flag: --servr (did you mean --server?)"},
		{[]string{"status", "--confg", "x.yaml"}, "signalctl status", "unknown flag: --confg (did you mean --config?)"},
		{[]string{"produce", "extra"}, "signalctl produce", `unknown command "extra" for "signalctl produce"`},
		{[]string{"produce", "-o", "yaml"}, "signalctl produce", `--output must be table or json, got "yaml"`},
		{[]string{"produce", "--count", "0"}, "signalctl produce", "--count must be at least 1"},
		{[]string{"produce", "--count", "-3"}, "signalctl produce", "--count must be at least 1"},
		{[]string{"produce", "--count", "many"}, "signalctl produce", `invalid argument "many" for "--count"`},
		{[]string{"produce", "--rate", "-1"}, "signalctl produce", "--rate must not be negative"},
		{[]string{"produce", "--file", "x.json", "--scope", "org"}, "signalctl produce", "--file and the message flags"},
		{[]string{"produce", "--file", "x.json", "--data", "{}"}, "signalctl produce", "--file and the message flags"},
		{[]string{"produce", "--file", "x.json", "--recipients", "u1"}, "signalctl produce", "--file and the message flags"},
		{[]string{"migrate", "bogus"}, "signalctl migrate", `unknown command "bogus" for "signalctl migrate"`},
		{append([]string{"migrate", "down"}, nowhere...), "signalctl migrate down", "say how many migrations to revert (N), or --all"},
		{append([]string{"migrate", "down", "0"}, nowhere...), "signalctl migrate down", `N must be a positive number of migrations, got "0"`},
		{append([]string{"migrate", "down", "one"}, nowhere...), "signalctl migrate down", `N must be a positive number of migrations, got "one"`},
		{append([]string{"migrate", "down", "1", "--all"}, nowhere...), "signalctl migrate down", "give N or --all, not both"},
		{append([]string{"migrate", "down", "1", "2"}, nowhere...), "signalctl migrate down", "accepts at most 1 arg(s)"},
		{append([]string{"migrate", "force", "abc"}, nowhere...), "signalctl migrate force", `V must be a migration version (or -1 for none), got "abc"`},
		{append(append([]string{"migrate", "force"}, nowhere...), "--", "-2"), "signalctl migrate force", `V must be a migration version (or -1 for none), got "-2"`},
		{append([]string{"migrate", "force"}, nowhere...), "signalctl migrate force", "accepts 1 arg(s), received 0"},
		{append([]string{"migrate", "up", "now"}, nowhere...), "signalctl migrate up", `unknown command "now"`},
		{append([]string{"migrate", "status", "-o", "yaml"}, nowhere...), "signalctl migrate status", `--output must be table or json, got "yaml"`},
		{append([]string{"members", "add", "--org", "x"}, nowhere...), "signalctl members add", "requires at least 1 arg(s), only received 0"},
		{append([]string{"members", "bogus"}, nowhere...), "signalctl members", `unknown command "bogus" for "signalctl members"`},
		{[]string{"token"}, "signalctl token", `required flag(s) "sub" not set`},
		{[]string{"token", "--sub"}, "signalctl token", "flag needs an argument: --sub"},
		{[]string{"version", "extra"}, "signalctl version", `unknown command "extra" for "signalctl version"`},
		{[]string{"version", "-o", "yaml"}, "signalctl version", `--output must be table or json, got "yaml"`},
		{[]string{"serve", "extra"}, "signalctl serve", `unknown command "extra" for "signalctl serve"`},
		{[]string{"serve", "--dev=maybe"}, "signalctl serve", `invalid argument "maybe" for "--dev"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			isolate(t)
			r := run(t, tc.args...)
			r.wantCode(t, 2)
			r.wantStderr(t, "Error: "+tc.want, fmt.Sprintf("Run '%s --help' for usage.\n", tc.path))
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
		})
	}
}

func TestHelpAndCompletion(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"Usage:", "serve", "migrate", "produce", "members", "token", "version"}},
		{[]string{"--help"}, []string{"Usage:", "produce"}},
		{[]string{"help", "produce"}, []string{"--file", "--count", "--rate", "--no-validate", "--brokers", "--topic"}},
		{[]string{"produce", "-h"}, []string{"signalctl produce --file -"}},
		{[]string{"migrate"}, []string{"Available Commands:", "down", "force", "status", "up"}},
		{[]string{"members"}, []string{"add", "remove", "list", "import"}},
		{[]string{"token", "--help"}, []string{"--sub", "--room", "--ttl"}},
		{[]string{"completion", "bash"}, []string{"bash completion", "signalctl"}},
		{[]string{"completion", "zsh"}, []string{"#compdef signalctl"}},
		{[]string{"completion", "fish"}, []string{"complete -c signalctl"}},
		{[]string{"completion", "powershell"}, []string{"Register-ArgumentCompleter"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{"signalctl"}, tc.args...), " "), func(t *testing.T) {
			isolate(t)
			r := run(t, tc.args...)
			r.wantCode(t, 0)
			for _, w := range tc.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			if r.Stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.Stderr)
			}
		})
	}
	t.Run("dev-db is hidden", func(t *testing.T) {
		isolate(t)
		if r := run(t, "--help"); strings.Contains(r.Stdout, "dev-db") {
			t.Errorf("help lists the hidden dev-db:\n%s", r.Stdout)
		}
	})
}

// brokerWith starts an in-process broker with the topics created (the
// producer does not ask for topics to be created).
func brokerWith(t *testing.T, topics ...string) string {
	t.Helper()
	emb, err := kafka.StartEmbedded(0, topics...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	return emb.Addr
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestConfigPrecedence proves flag > environment > config file > default
// through the CLI, with keys whose effect can be observed.
func TestConfigPrecedence(t *testing.T) {
	t.Run("kafka.topic through produce", func(t *testing.T) {
		cases := []struct {
			name     string
			file     bool // kafka.topic: t-file in --config
			envFile  bool // the file given by SIGNAL_CONFIG instead of --config
			env      bool // SIGNAL_KAFKA_TOPIC=t-env
			flag     bool // --topic t-flag
			expected string
		}{
			{"default", false, false, false, false, testkit.Topic},
			{"file over default", true, false, false, false, "t-file"},
			{"file named by SIGNAL_CONFIG", true, true, false, false, "t-file"},
			{"env over file", true, false, true, false, "t-env"},
			{"env over default", false, false, true, false, "t-env"},
			{"flag over env and file", true, false, true, true, "t-flag"},
			{"flag over file", true, false, false, true, "t-flag"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				isolate(t)
				broker := brokerWith(t, testkit.Topic, "t-file", "t-env", "t-flag")
				args := []string{"produce", "--brokers", broker, "--recipients", "u1"}
				if tc.file {
					p := writeFile(t, "signal.yaml", "kafka:\n  topic: t-file\n")
					if tc.envFile {
						t.Setenv("SIGNAL_CONFIG", p)
					} else {
						args = append(args, "--config", p)
					}
				}
				if tc.env {
					t.Setenv("SIGNAL_KAFKA_TOPIC", "t-env")
				}
				if tc.flag {
					args = append(args, "--topic", "t-flag")
				}
				r := run(t, args...)
				r.wantCode(t, 0)
				if !strings.HasPrefix(r.Stdout, tc.expected+" partition ") {
					t.Errorf("stdout = %q, want a record on %s", r.Stdout, tc.expected)
				}
				consume(t, broker, tc.expected, 1)
			})
		}
	})

	t.Run("kafka.brokers through produce", func(t *testing.T) {
		isolate(t)
		good := testkit.Broker(t)
		bad := closedAddr(t)
		file := func(addr string) string {
			return writeFile(t, "signal.yaml", "kafka:\n  brokers: ["+addr+"]\n")
		}
		cases := []struct {
			name      string
			file, env string
			flag      string
			code      int
		}{
			{"file", good, "", "", 0},
			{"env over file", bad, good, "", 0},
			{"env over file, proven by failing", good, bad, "", 1},
			{"flag over env and file", bad, bad, good, 0},
			{"flag over env and file, proven by failing", good, good, bad, 1},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Setenv("SIGNAL_KAFKA_BROKERS", tc.env)
				args := []string{"produce", "--recipients", "u1", "--config", file(tc.file)}
				if tc.flag != "" {
					args = append(args, "--brokers", tc.flag)
				}
				r := run(t, args...)
				r.wantCode(t, tc.code)
				if tc.code != 0 {
					r.wantStderr(t, bad)
				}
			})
		}
	})

	t.Run("database.url through migrate status", func(t *testing.T) {
		isolate(t)
		empty := pgtest.NewEmptyDatabase(t)
		migrated := pgtest.NewDatabase(t)
		latest := store.LatestVersion()
		cases := []struct {
			name      string
			file, env string
			flag      string
			version   uint
		}{
			{"file", empty, "", "", 0},
			{"env over file", empty, migrated, "", latest},
			{"flag over env and file", migrated, migrated, empty, 0},
			{"flag over file", empty, "", migrated, latest},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Setenv("SIGNAL_DATABASE_URL", tc.env)
				args := []string{"migrate", "status", "-o", "json", "--config",
					writeFile(t, "signal.yaml", "database:\n  url: "+tc.file+"\n")}
				if tc.flag != "" {
					args = append(args, "--database-url", tc.flag)
				}
				r := run(t, args...)
				r.wantCode(t, 0)
				if st := decodeJSON[store.SchemaStatus](t, r.Stdout); st.Version != tc.version {
					t.Errorf("schema version %d, want %d: the wrong database was used", st.Version, tc.version)
				}
			})
		}
	})

	t.Run("--config over SIGNAL_CONFIG", func(t *testing.T) {
		isolate(t)
		broker := brokerWith(t, "t-env-file", "t-flag-file")
		t.Setenv("SIGNAL_CONFIG", writeFile(t, "env.yaml", "kafka:\n  topic: t-env-file\n"))
		r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--config", writeFile(t, "flag.yaml", "kafka:\n  topic: t-flag-file\n"))
		r.wantCode(t, 0)
		if !strings.HasPrefix(r.Stdout, "t-flag-file ") {
			t.Errorf("stdout = %q, want the --config file's topic", r.Stdout)
		}
	})

	t.Run("bad config files", func(t *testing.T) {
		cases := []struct {
			name    string
			content string // "" = the file does not exist
			want    string
		}{
			{"missing", "", "does not exist"},
			{"not YAML", "kafka: [unclosed\n", "read config file"},
			{"invalid value", "log:\n  level: loud\n", `log.level must be debug, info, warn or error, got "loud"`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				isolate(t)
				p := t.TempDir() + "/missing.yaml"
				if tc.content != "" {
					p = writeFile(t, "signal.yaml", tc.content)
				}
				r := run(t, "token", "--sub", "u1", "--config", p)
				r.wantCode(t, 1)
				r.wantStderr(t, tc.want)
				if tc.content != "" && tc.name != "invalid value" {
					r.wantStderr(t, p)
				}
				if r.Stdout != "" {
					t.Errorf("stdout = %q, want nothing", r.Stdout)
				}
			})
		}
	})
}
