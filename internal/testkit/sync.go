package testkit

import (
	"testing"

	"github.com/signal-notify/signal/internal/device"
)

// SyncClient is the sync stream's reference device (internal/device).
type SyncClient = device.SyncClient

// NewSyncClient makes a device of recipient with a test token.
func NewSyncClient(t testing.TB, recipient string, url func() string) *SyncClient {
	return device.New(recipient, Token(t, recipient), url)
}
