package cli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// exec runs one SQL statement on the database at url.
func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// tableExists reports whether the database at url has the table.
func tableExists(t *testing.T, url, table string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// schemaStatus is migrate status -o json on url.
func schemaStatus(t *testing.T, url string) store.SchemaStatus {
	t.Helper()
	r := run(t, "migrate", "status", "-o", "json", "--database-url", url)
	r.wantCode(t, 0)
	return decodeJSON[store.SchemaStatus](t, r.Stdout)
}

func TestMigrateStatus(t *testing.T) {
	latest := store.LatestVersion()
	embedded := store.Embedded()
	if latest == 0 || len(embedded) == 0 {
		t.Fatal("no embedded migrations")
	}
	cases := []struct {
		name    string
		url     func(testing.TB) string
		version uint
		state   string
	}{
		{"migrated database", pgtest.NewDatabase, latest, "applied"},
		{"empty database", pgtest.NewEmptyDatabase, 0, "pending"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" table", func(t *testing.T) {
			isolate(t)
			r := run(t, "migrate", "status", "--database-url", tc.url(t))
			r.wantCode(t, 0)
			lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
			if len(lines) != len(embedded)+1 {
				t.Fatalf("stdout has %d lines, want a header and %d rows:\n%s", len(lines), len(embedded), r.Stdout)
			}
			if f := strings.Fields(lines[0]); strings.Join(f, " ") != "VERSION NAME STATE" {
				t.Errorf("header %q", lines[0])
			}
			for i, mg := range embedded {
				want := fmt.Sprintf("%d %s %s", mg.Version, mg.Name, tc.state)
				if got := strings.Join(strings.Fields(lines[i+1]), " "); got != want {
					t.Errorf("row %d = %q, want %q", i+1, got, want)
				}
			}
			if want := fmt.Sprintf("Schema version %d of %d.\n", tc.version, latest); r.Stderr != want {
				t.Errorf("stderr = %q, want %q", r.Stderr, want)
			}
		})
		t.Run(tc.name+" json", func(t *testing.T) {
			isolate(t)
			r := run(t, "migrate", "status", "-o", "json", "--database-url", tc.url(t))
			r.wantCode(t, 0)
			if r.Stderr != "" {
				t.Errorf("stderr = %q, want nothing with -o json", r.Stderr)
			}
			keys := decodeJSON[map[string]any](t, r.Stdout)
			for _, k := range []string{"version", "dirty", "latest", "migrations"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("no %q in %s", k, r.Stdout)
				}
			}
			st := decodeJSON[store.SchemaStatus](t, r.Stdout)
			if st.Version != tc.version || st.Dirty || st.Latest != latest || len(st.Migrations) != len(embedded) {
				t.Errorf("status %+v", st)
			}
			for i, mg := range st.Migrations {
				if mg.Version != embedded[i].Version || mg.Name != embedded[i].Name || mg.Applied != (tc.state == "applied") {
					t.Errorf("migration %d = %+v", i, mg)
				}
			}
		})
	}
}

func TestMigrateUpAndDown(t *testing.T) {
	isolate(t)
	latest := store.LatestVersion()
	// The version before the latest: numbers may skip (branches number
	// their migrations apart and are renumbered when merged).
	embedded := store.Embedded()
	previous := embedded[len(embedded)-2].Version
	url := pgtest.NewEmptyDatabase(t)

	r := run(t, "migrate", "up", "--database-url", url)
	r.wantCode(t, 0)
	if want := fmt.Sprintf("✓ schema migrated from version 0 to %d.\n", latest); r.Stderr != want {
		t.Errorf("stderr = %q, want %q", r.Stderr, want)
	}
	if r.Stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.Stdout)
	}
	if st := schemaStatus(t, url); st.Version != latest || st.Dirty {
		t.Fatalf("after up: %+v", st)
	}
	if !tableExists(t, url, "memberships") {
		t.Error("no memberships table after up")
	}

	r = run(t, "migrate", "up", "--database-url", url)
	r.wantCode(t, 0)
	r.wantStderr(t, fmt.Sprintf("Schema already at version %d: nothing to do.", latest))

	// down needs --yes or a terminal to confirm on.
	steps := []struct {
		name    string
		o       runOpts
		args    []string
		code    int
		stderr  string
		version uint
	}{
		{"down 1 without --yes, no terminal", runOpts{}, []string{"down", "1"}, 2,
			"refusing to revert 1 migration(s) without --yes (no terminal to confirm on)", latest},
		{"down --all without --yes, no terminal", runOpts{}, []string{"down", "--all"}, 2,
			"refusing to revert every migration and drop all of Signal's tables without --yes", latest},
		{"down 1 answered no", runOpts{inTTY: true, stdin: "n\n"}, []string{"down", "1"}, 1,
			"This will revert 1 migration(s) on ", latest},
		{"down 1 answered with nothing", runOpts{inTTY: true}, []string{"down", "1"}, 1, "cancelled", latest},
		{"down 1 answered yes", runOpts{inTTY: true, stdin: "yes\n"}, []string{"down", "1"}, 0,
			fmt.Sprintf("Schema now at version %d.", previous), previous},
		{"up again", runOpts{}, []string{"up"}, 0, fmt.Sprintf("from version %d to %d", previous, latest), latest},
		{"down 1 --yes", runOpts{}, []string{"down", "1", "--yes"}, 0, fmt.Sprintf("Schema now at version %d.", previous), previous},
		{"up once more", runOpts{}, []string{"up"}, 0, "schema migrated", latest},
		{"down --all -y", runOpts{}, []string{"down", "--all", "-y"}, 0, "Schema now at version 0.", 0},
		{"down --all on an empty schema", runOpts{}, []string{"down", "--all", "--yes"}, 0, "Schema now at version 0.", 0},
	}
	for _, s := range steps {
		r := runWith(t, s.o, append(append([]string{"migrate"}, s.args...), "--database-url", url)...)
		if r.Code != s.code || !strings.Contains(r.Stderr, s.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", s.name, r.Code, r.Stderr, s.code, s.stderr)
		}
		if s.o.inTTY && !strings.Contains(r.Stderr, "[y/N]") {
			t.Errorf("%s: no confirmation question on stderr: %q", s.name, r.Stderr)
		}
		if strings.Contains(r.Stderr, "Continue?") && !strings.Contains(r.Stderr, store.Redact(url)) {
			t.Errorf("%s: the question does not name the database: %q", s.name, r.Stderr)
		}
		if st := schemaStatus(t, url); st.Version != s.version {
			t.Fatalf("%s: schema at %d, want %d", s.name, st.Version, s.version)
		}
	}
	if tableExists(t, url, "memberships") || tableExists(t, url, "notifications") {
		t.Error("tables left after down --all")
	}
}

func TestMigrateForceRepairsADirtySchema(t *testing.T) {
	isolate(t)
	latest := store.LatestVersion()
	url := pgtest.NewDatabase(t)
	execSQL(t, url, `UPDATE schema_migrations SET dirty = true`)

	r := run(t, "migrate", "status", "--database-url", url)
	r.wantCode(t, 0)
	r.wantStderr(t, fmt.Sprintf("Schema version %d of %d (dirty: run migrate force after fixing it).", latest, latest))
	last := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if got := strings.Fields(last[len(last)-1]); got[len(got)-1] != "dirty" {
		t.Errorf("last row %q, want state dirty", last[len(last)-1])
	}
	if st := schemaStatus(t, url); !st.Dirty || st.Version != latest || st.Migrations[len(st.Migrations)-1].Applied {
		t.Errorf("status %+v, want dirty at %d", st, latest)
	}

	r = run(t, "migrate", "up", "--database-url", url)
	r.wantCode(t, 1)
	r.wantStderr(t, "migrate up:", "irty")

	r = run(t, "migrate", "force", fmt.Sprint(latest), "--database-url", url)
	r.wantCode(t, 0)
	if want := fmt.Sprintf("Schema version set to %d (clean).\n", latest); r.Stderr != want {
		t.Errorf("stderr = %q, want %q", r.Stderr, want)
	}
	if st := schemaStatus(t, url); st.Dirty || st.Version != latest {
		t.Errorf("after force: %+v", st)
	}

	// -1 looks like a flag: it takes "--" (cobra/pflag), and without it is a usage error.
	r = run(t, "migrate", "force", "-1", "--database-url", url)
	r.wantCode(t, 2)
	r = run(t, "migrate", "force", "--database-url", url, "--", "-1")
	r.wantCode(t, 0)
	if st := schemaStatus(t, url); st.Dirty || st.Version != 0 {
		t.Errorf("after force -1: %+v, want no version", st)
	}
}

func TestMigrateUnreachableDatabaseFailsWithoutLeakingThePassword(t *testing.T) {
	isolate(t)
	r := run(t, "migrate", "status", "--database-url", "postgres://signal:hunter2@127.0.0.1:1/signal?sslmode=disable&connect_timeout=5")
	r.wantCode(t, 1)
	r.wantStderr(t, "127.0.0.1:1")
	if strings.Contains(r.Stderr, "hunter2") {
		t.Errorf("stderr shows the password: %q", r.Stderr)
	}
	if r.Stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.Stdout)
	}
}

func TestMigrateAgainstAMissingDatabaseSaysSoInWords(t *testing.T) {
	isolate(t)
	url := strings.Replace(pgtest.NewDatabase(t), "/signal_t_", "/no_such_db_", 1)
	for _, args := range [][]string{{"migrate", "up"}, {"migrate", "status"}, {"deadletters", "list"}} {
		r := run(t, append(args, "--database-url", url)...)
		r.wantCode(t, 1)
		r.wantStderr(t, "does not exist", "createdb", "serve --dev")
		if strings.Contains(r.Stderr, "3D000") || strings.Contains(r.Stderr, "SQLSTATE") {
			t.Errorf("%v: stderr shows the server's code: %q", args, r.Stderr)
		}
	}
}
