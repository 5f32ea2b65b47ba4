package event

import (
	"encoding/json"
	"io"
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

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
