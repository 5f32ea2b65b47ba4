package cli_test

import (
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/cli"
	"github.com/signal-notify/signal/internal/pgtest"
)

// members is members list -o json on url (every group).
func members(t *testing.T, url string) []cli.Membership {
	t.Helper()
	r := run(t, "members", "list", "-o", "json", "--database-url", url)
	r.wantCode(t, 0)
	return decodeJSON[[]cli.Membership](t, r.Stdout)
}

// triples renders memberships as scope/scope_id/recipient, one per entry.
func triples(ms []cli.Membership) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Scope+"/"+m.ScopeID+"/"+m.RecipientID)
	}
	return strings.Join(out, " ")
}

func TestMembersAddRemoveList(t *testing.T) {
	isolate(t)
	url := pgtest.NewDatabase(t)
	db := []string{"--database-url", url}

	steps := []struct {
		args   []string
		stderr string
	}{
		{[]string{"add", "--org", "org-1", "u1", "u2"}, "Added 2 member(s) to org org-1 (0 already there).\n"},
		{[]string{"add", "--org", "org-1", "u2", "u3"}, "Added 1 member(s) to org org-1 (1 already there).\n"},
		{[]string{"add", "--merchant", "m-7", "u9"}, "Added 1 member(s) to merchant m-7 (0 already there).\n"},
		{[]string{"add", "--org", "org-2", "u1"}, "Added 1 member(s) to org org-2 (0 already there).\n"},
		{[]string{"remove", "--org", "org-2", "u1", "nobody"}, "Removed 1 member(s) from org org-2.\n"},
		{[]string{"remove", "--org", "org-2", "u1"}, "Removed 0 member(s) from org org-2.\n"},
	}
	for _, s := range steps {
		r := run(t, append(append([]string{"members"}, s.args...), db...)...)
		r.wantCode(t, 0)
		if r.Stderr != s.stderr || r.Stdout != "" {
			t.Errorf("members %v: stdout %q stderr %q, want stderr %q", s.args, r.Stdout, r.Stderr, s.stderr)
		}
	}

	lists := []struct {
		name string
		args []string
		want string
	}{
		{"all groups", nil, "merchant/m-7/u9 org/org-1/u1 org/org-1/u2 org/org-1/u3"},
		{"one org", []string{"--org", "org-1"}, "org/org-1/u1 org/org-1/u2 org/org-1/u3"},
		{"one merchant", []string{"--merchant", "m-7"}, "merchant/m-7/u9"},
		{"emptied org", []string{"--org", "org-2"}, ""},
		{"unknown merchant", []string{"--merchant", "org-1"}, ""},
	}
	for _, l := range lists {
		t.Run(l.name+" json", func(t *testing.T) {
			r := run(t, append(append([]string{"members", "list", "-o", "json"}, l.args...), db...)...)
			r.wantCode(t, 0)
			raw := decodeJSON[[]map[string]any](t, r.Stdout)
			for _, m := range raw {
				if len(m) != 3 || m["scope"] == nil || m["scopeId"] == nil || m["recipientId"] == nil {
					t.Errorf("entry %v, want scope, scopeId, recipientId", m)
				}
			}
			got := decodeJSON[[]cli.Membership](t, r.Stdout)
			if triples(got) != l.want {
				t.Errorf("members %q, want %q", triples(got), l.want)
			}
			if l.want == "" && strings.TrimSpace(r.Stdout) != "[]" {
				t.Errorf("stdout = %q, want []", r.Stdout)
			}
		})
		t.Run(l.name+" table", func(t *testing.T) {
			r := run(t, append(append([]string{"members", "list"}, l.args...), db...)...)
			r.wantCode(t, 0)
			lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
			var want []string
			if l.want != "" {
				want = strings.Split(l.want, " ")
			}
			if len(lines) != len(want)+1 {
				t.Fatalf("stdout has %d lines, want a header and %d rows:\n%s", len(lines), len(want), r.Stdout)
			}
			checkPlainTable(t, r.Stdout, []string{"SCOPE", "SCOPE ID", "RECIPIENT"})
			for i, w := range want {
				f := strings.Fields(lines[i+1])
				if len(f) != 3 || f[0]+"/"+f[1]+"/"+f[2] != w {
					t.Errorf("row %d = %q, want %s", i+1, lines[i+1], w)
				}
			}
			if len(want) == 0 && r.Stderr != "No members.\n" {
				t.Errorf("stderr = %q, want No members.", r.Stderr)
			} else if len(want) > 0 && r.Stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.Stderr)
			}
		})
	}

	t.Run("table on a terminal has borders and, with NO_COLOR, no escape codes", func(t *testing.T) {
		r := runWith(t, runOpts{outTTY: true}, append([]string{"members", "list", "--org", "org-1"}, db...)...)
		r.wantCode(t, 0)
		for _, want := range []string{"╭", "╰", "│", "SCOPE ID", "u3"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
			}
		}
		if strings.Contains(r.Stdout, "\x1b[") {
			t.Errorf("escape codes with NoColor:\n%q", r.Stdout)
		}
	})
}

// checkPlainTable checks a table printed without a terminal: no escape
// codes or borders, the headers in order, every column starting at the
// same offset on every line.
func checkPlainTable(t *testing.T, out string, headers []string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b│╭─") {
		t.Errorf("plain table holds escape codes or borders:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var starts []int
	for i, h := range headers {
		at := strings.Index(lines[0], h)
		if at < 0 || (i > 0 && at <= starts[i-1]) {
			t.Fatalf("header %q: headers %q not in order", lines[0], headers)
		}
		starts = append(starts, at)
	}
	for _, l := range lines[1:] {
		for _, at := range starts[1:] {
			if at > len(l) || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("row %q does not start a column at offset %d (header %q)", l, at, lines[0])
			}
		}
	}
}

func TestMembersUsageErrorsReachNoDatabase(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"add without recipients", []string{"add", "--org", "x"}, "requires at least 1 arg(s)"},
		{"remove without recipients", []string{"remove", "--merchant", "m"}, "requires at least 1 arg(s)"},
		{"add without a group", []string{"add", "u1"}, "say which group: --org ID or --merchant ID"},
		{"add with an empty group", []string{"add", "--org", "", "u1"}, "say which group"},
		{"add to both kinds of group", []string{"add", "--org", "a", "--merchant", "b", "u1"}, "[org merchant]"},
		{"empty recipient", []string{"add", "--org", "a", "u1", ""}, "recipient must not be empty"},
		{"recipient too long", []string{"add", "--org", "a", strings.Repeat("r", 257)}, "recipient is longer than 256 bytes"},
		{"group id too long", []string{"add", "--merchant", strings.Repeat("m", 257), "u1"}, "merchant is longer than 256 bytes"},
		{"list as yaml", []string{"list", "-o", "yaml"}, `--output must be table or json, got "yaml"`},
		{"list with an argument", []string{"list", "org-1"}, "unknown command"},
		{"import without a file", []string{"import"}, "accepts 1 arg(s), received 0"},
		{"import two files", []string{"import", "a.csv", "b.csv"}, "accepts 1 arg(s), received 2"},
		{"unknown flag", []string{"list", "--group", "x"}, "unknown flag: --group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			r := run(t, append(append([]string{"members"}, tc.args...), "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable")...)
			r.wantCode(t, 2)
			r.wantStderr(t, tc.want, "--help' for usage.")
		})
	}
}

func TestMembersImport(t *testing.T) {
	cases := []struct {
		name  string
		csv   string
		stdin bool
		want  string
	}{
		{"with header", "scope,scope_id,recipient_id\norg,org-1,u1\nmerchant,m-7,u2\n", false, "merchant/m-7/u2 org/org-1/u1"},
		{"upper-case header", "SCOPE,SCOPE_ID,RECIPIENT_ID\norg,org-1,u1\n", false, "org/org-1/u1"},
		{"without header, spaces and CRLF", "org, org-1 ,u1 \r\norg,org-1,u2\r\n", false, "org/org-1/u1 org/org-1/u2"},
		{"no final newline, blank lines, quotes", "org,org-1,u1\n\n\"merchant\",\"m,7\",u2", false, "merchant/m,7/u2 org/org-1/u1"},
		{"duplicates in the file", "org,org-1,u1\norg,org-1,u1\n", false, "org/org-1/u1"},
		{"stdin", "scope,scope_id,recipient_id\norg,org-3,u5\n", true, "org/org-3/u5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			url := pgtest.NewDatabase(t)
			o, file := runOpts{}, "-"
			if tc.stdin {
				o.stdin = tc.csv
			} else {
				file = writeFile(t, "members.csv", tc.csv)
			}
			r := runWith(t, o, "members", "import", file, "--database-url", url)
			r.wantCode(t, 0)
			r.wantStderr(t, "Imported ")
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if got := triples(members(t, url)); got != tc.want {
				t.Errorf("members %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("counts new and existing memberships", func(t *testing.T) {
		isolate(t)
		url := pgtest.NewDatabase(t)
		if r := run(t, "members", "add", "--org", "org-1", "u1", "--database-url", url); r.Code != 0 {
			t.Fatal(r.Stderr)
		}
		file := writeFile(t, "m.csv", "org,org-1,u1\norg,org-1,u2\nmerchant,m-1,u1\n")
		r := run(t, "members", "import", file, "--database-url", url)
		r.wantCode(t, 0)
		if want := "Imported 3 row(s): 2 new membership(s), 1 already there.\n"; r.Stderr != want {
			t.Errorf("stderr = %q, want %q", r.Stderr, want)
		}
		r = run(t, "members", "import", file, "--database-url", url)
		r.wantCode(t, 0)
		if want := "Imported 3 row(s): 0 new membership(s), 3 already there.\n"; r.Stderr != want {
			t.Errorf("stderr = %q, want %q", r.Stderr, want)
		}
	})
}

func TestMembersImportRefusesBadRowsAndWritesNothing(t *testing.T) {
	cases := []struct {
		name string
		csv  string
		want string
	}{
		{"bad scope", "org,org-1,u1\norg,org-1,u2\nusers,x,u3\n", `line 3: scope must be org or merchant, got "users"`},
		{"empty scope id", "org,org-1,u1\norg,,u2\n", "line 2: scope_id must not be empty"},
		{"empty recipient after header", "scope,scope_id,recipient_id\norg,org-1,\n", "line 2: recipient_id must not be empty"},
		{"blank recipient", "org,org-1,u1\norg,org-1,   \n", "line 2: recipient_id must not be empty"},
		{"too long id", "org,org-1,u1\norg,org-1," + strings.Repeat("u", 257) + "\n", "line 2: invalid identifier: recipient_id is longer than 256 bytes"},
		{"too few columns", "org,org-1,u1\norg,org-1\n", "line 2"},
		{"too many columns", "org,org-1,u1,extra\n", "line 1"},
		{"unterminated quote", "org,org-1,u1\norg,\"org-1,u2\n", "line 2"},
		{"line numbers count blank lines", "org,org-1,u1\n\n\norg,org-1,\n", "line 4: recipient_id must not be empty"},
		{"header only", "scope,scope_id,recipient_id\n", "holds no membership rows"},
		{"empty file", "", "holds no membership rows"},
		{"header after the first line", "org,org-1,u1\nscope,scope_id,recipient_id\n", `line 2: scope must be org or merchant, got "scope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			url := pgtest.NewDatabase(t)
			file := writeFile(t, "bad.csv", tc.csv)
			r := run(t, "members", "import", file, "--database-url", url)
			r.wantCode(t, 1)
			r.wantStderr(t, file, tc.want)
			if strings.Contains(r.Stderr, "wrong number of fields") || strings.Contains(r.Stderr, "quote") {
				r.wantStderr(t, "scope,scope_id,recipient_id")
			}
			if got := members(t, url); len(got) != 0 {
				t.Errorf("memberships written: %s", triples(got))
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		isolate(t)
		r := run(t, "members", "import", "/nonexistent/members.csv", "--database-url", "postgres://postgres@127.0.0.1:1/x")
		r.wantCode(t, 1)
		r.wantStderr(t, "/nonexistent/members.csv", "no such file")
	})
	t.Run("stdin names itself", func(t *testing.T) {
		isolate(t)
		url := pgtest.NewDatabase(t)
		r := runWith(t, runOpts{stdin: "org,org-1,u1\nshop,s,u2\n"}, "members", "import", "-", "--database-url", url)
		r.wantCode(t, 1)
		r.wantStderr(t, "line 2: scope must be org or merchant")
		if got := members(t, url); len(got) != 0 {
			t.Errorf("memberships written: %s", triples(got))
		}
	})
}

func TestMembersImportReplaceMakesEachGroupOfTheFileExactlyItsRows(t *testing.T) {
	isolate(t)
	url := pgtest.NewDatabase(t)
	for _, args := range [][]string{{"--org", "org-1", "u1", "u2"}, {"--org", "org-2", "x"}} {
		if r := run(t, append(append([]string{"members", "add"}, args...), "--database-url", url)...); r.Code != 0 {
			t.Fatal(r.Stderr)
		}
	}
	file := writeFile(t, "m.csv", "org,org-1,u2\norg,org-1,u3\nmerchant,m-1,u9\n")
	r := run(t, "members", "import", "--replace", file, "--database-url", url)
	r.wantCode(t, 0)
	if want := "Replaced 2 group(s) from 3 row(s): 2 membership(s) added, 1 removed.\n"; r.Stderr != want {
		t.Errorf("stderr = %q, want %q", r.Stderr, want)
	}
	if got, want := triples(members(t, url)), "merchant/m-1/u9 org/org-1/u2 org/org-1/u3 org/org-2/x"; got != want {
		t.Errorf("members %q, want %q (org-2, not in the file, kept)", got, want)
	}
}
