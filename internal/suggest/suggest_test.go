package suggest

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"http.addr", "http.metrics_addr", "kafka.brokers", "kafka.topic", "templates", "content", "action_url",
		"recipients", "recipient-scope", "SIGNAL_HTTP_ADDR", "SIGNAL_KAFKA_BROKERS"}
	for _, tc := range []struct{ in, want string }{
		{"http.adr", "http.addr"},
		{"http.addr", "http.addr"},
		{"HTTP.Addr", "http.addr"},
		{"kafka.borkers", "kafka.brokers"}, // a transposition
		{"kafka.broker", "kafka.brokers"},
		{"recipient", "recipients"},
		{"contnet", "content"},
		{"actionurl", "action_url"},
		{"SIGNAL_HTTP_ADRR", "SIGNAL_HTTP_ADDR"},
		{"SIGNAL_KAFKA_BROKER", "SIGNAL_KAFKA_BROKERS"},
		{"database", ""}, // nothing near
		{"x", ""},
		{"kafka.group", ""},
	} {
		if got := Closest(tc.in, keys); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
