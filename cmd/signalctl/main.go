// Command signalctl runs and operates Signal, the notification service.
package main

import (
	"os"

	"github.com/signal-notify/signal/internal/cli"
)

func main() { os.Exit(cli.Main()) }
