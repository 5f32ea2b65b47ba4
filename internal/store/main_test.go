package store_test

import (
	"os"
	"testing"

	"github.com/signal-notify/signal/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
