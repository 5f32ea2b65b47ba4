package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lxzan/gws"
)

// A dropped connection is said in words, not in the library's.
func TestTailSaysWhyTheConnectionEnded(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&gws.CloseError{Code: 1001}, "the server is going away (restarting or shutting down) (close code 1001)"},
		{&gws.CloseError{Code: 3008, Reason: []byte("slow client: websocket.queue_bytes exceeded")}, "the server dropped this client for reading too slowly: slow client: websocket.queue_bytes exceeded (close code 3008)"},
		{&gws.CloseError{Code: 1008, Reason: []byte("too many actions")}, "the server dropped this client for sending too many actions: too many actions (close code 1008)"},
		{&gws.CloseError{Code: 4001}, "the token expired (close code 4001)"},
		{fmt.Errorf("read: %w", io.EOF), "the connection was lost"},
	}
	for _, tt := range tests {
		got := describeClose(tt.err)
		if got != tt.want {
			t.Errorf("describeClose(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if strings.Contains(got, "gws") {
			t.Errorf("describeClose(%v) = %q names the library", tt.err, got)
		}
	}
	if got := describeClose(errors.New("dial tcp: refused")); got != "dial tcp: refused" {
		t.Errorf("other errors pass as they are, got %q", got)
	}
}
