package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/signal-notify/signal/internal/cli"
	"github.com/signal-notify/signal/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binary != "" { // the signalctl built for the run (process_test.go)
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// run executes a signalctl command line in-process.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &cli.IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &errOut}
	code = cli.Execute(context.Background(), io, args)
	return out.String(), errOut.String(), code
}
