package event

import (
	"encoding/json"
	"testing"
)

func mustRemarshal(t *testing.T, d *Decoded) []byte {
	t.Helper()
	b, err := json.Marshal(d.Message)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
