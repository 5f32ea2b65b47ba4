package event

import "testing"

// Numbers as PostgreSQL's numeric prints them (the store's test checks the
// same inputs against a real server).
func TestPGNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "-0.0": "0.0", "1": "1", "-1": "-1", "1.50": "1.50", "1e2": "100",
		"1E+2": "100", "1.0e2": "100", "1.50e1": "15.0", "15e-1": "1.5", "1.5e-3": "0.0015",
		"0.000": "0.000", "123456789012345678901234567890": "123456789012345678901234567890",
		"-2.5E-2": "-0.025", "0e5": "0", "1e1001": "1e1001",
	} {
		if got := pgNumber(in); got != want {
			t.Errorf("pgNumber(%s) = %s, want %s", in, got, want)
		}
	}
}

// The data of a message and the same data as jsonb gives it back (other
// key order, spaces, numbers as numeric prints them) have one stored form.
func TestStoredDataIsOneFormForTheMessageAndTheRow(t *testing.T) {
	msg := `{"eventType":"X","recipientScope":"users","actorId":"a","actor":{"id":"a","name":"A","type":"u"},` +
		`"organizerId":"o","recipientIds":["u1"],"occurredAt":"2026-11-27T09:40:53Z",` +
		`"data":{"zeta":1e2,"b":[1.50,-0,{"y":"<&>","x":"\u00e9\u2028"}],"a":{"k":"v"}}}`
	d, err := Decode([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	fromDB := `{"a": {"k": "v"}, "b": [1.50, 0, {"x": "é\u2028", "y": "<&>"}], "zeta": 100}`
	if got := string(StoredData([]byte(fromDB))); got != string(d.Data) {
		t.Errorf("from the row: %s\nfrom the message: %s", got, d.Data)
	}
	if string(d.Data) != `{"a":{"k":"v"},"b":[1.50,0,{"x":"é\u2028","y":"<&>"}],"zeta":100}` {
		t.Errorf("stored form %s", d.Data)
	}
	if string(d.CanonicalData) == string(d.Data) {
		t.Errorf("the canonical form (hashed into ids) keeps numbers as written: %s", d.CanonicalData)
	}
}
