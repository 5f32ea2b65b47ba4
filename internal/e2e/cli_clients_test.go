package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/cli"
	"github.com/signal-notify/signal/internal/client"
	"github.com/signal-notify/signal/internal/testkit"
)

// serverEnv points the CLI at in with the test API key and secret.
func serverEnv(t *testing.T, in *testkit.Instance) {
	t.Setenv("SIGNAL_DEV_STATE", t.TempDir()+"/dev.json")
	t.Setenv("SIGNAL_SERVER", in.URL())
	t.Setenv("SIGNAL_API_KEY", testkit.APIKey)
	t.Setenv("SIGNAL_AUTH_JWT_SECRET", testkit.JWTSecret)
}

func TestSendBroadcastAndClientsCommands(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "ops/*"))
	id := c.Welcome()
	c.Send(`{"action":"join","room":"ops/night shift é"}`)
	c.Expect("signal/system/joined")

	if _, errOut, code := run(t, "send", "--room", "ops/night shift é", "--topic", "ops/page", "--data", `{"a":1}`); code != 0 {
		t.Fatalf("send --room: %d %s", code, errOut)
	}
	if f := c.Expect("ops/page"); f.Room != "ops/night shift é" || string(f.Data) != `{"a":1}` {
		t.Errorf("frame %+v", f)
	}
	if _, errOut, code := run(t, "send", "--client", id, "--topic", "direct", "--data", "[1,2]"); code != 0 {
		t.Fatalf("send --client: %d %s", code, errOut)
	}
	if f := c.Expect("direct"); string(f.Data) != `[1,2]` {
		t.Errorf("frame %+v", f)
	}
	if _, errOut, code := run(t, "broadcast", "--topic", "all", "--data", `"x"`); code != 0 {
		t.Fatalf("broadcast: %d %s", code, errOut)
	}
	c.Expect("all")

	out, _, code := run(t, "clients", "-o", "json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("clients -o json: %d %s", code, out)
	}
	if since, _ := list[0]["connectedSince"].(string); list[0]["clientId"] != id || !millis.MatchString(since) {
		t.Errorf("clients -o json: want clientId %s and connectedSince in milliseconds: %s", id, out)
	}
	out, _, code = run(t, "clients")
	if code != 0 || !strings.Contains(out, "CLIENT") || !strings.Contains(out, id) || !strings.Contains(out, "ops/night shift é") {
		t.Errorf("clients table: %s", out)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown client", []string{"send", "--client", "nope", "--topic", "t"}, 1, "no client"},
		{"client and room", []string{"send", "--client", "x", "--room", "y", "--topic", "t"}, 2, ""},
		{"neither client nor room", []string{"send", "--topic", "t"}, 2, ""},
		{"no topic", []string{"broadcast"}, 2, "topic"},
		{"bad JSON data", []string{"broadcast", "--topic", "t", "--data", "{"}, 2, "not valid JSON"},
		{"room with a control character", []string{"send", "--room", "a\x07b", "--topic", "t"}, 2, "control"},
		{"wrong API key", []string{"broadcast", "--topic", "t", "--api-key", "nope"}, 1, "401"},
		{"server down", []string{"broadcast", "--topic", "t", "--server", "http://127.0.0.1:1"}, 1, "is serve running"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, errOut, tt.code, tt.msg)
			}
		})
	}
}

func TestTailPrintsFramesOfItsRooms(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	var out, errOut bytes.Buffer
	var mu sync.Mutex
	io := &cli.IOStreams{In: bytes.NewReader(nil), Out: lockedWriter{&out, &mu}, ErrOut: &errOut}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, io, []string{"tail", "--room", "signal/notification/u7", "--count", "2", "-o", "json"})
	}()
	// "joined" is sent once the room is registered for every instance.
	testkit.Eventually(t, 10*time.Second, "tail to join", func() bool {
		return strings.Contains(out2(&out, &mu), "signal/system/joined")
	})
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"u7"}, nil))
	if code, _ := call(t, "POST", in.URL()+"/socket/websocket/clients/rooms/signal%2Fnotification%2Fu7/send", testkit.APIKey, map[string]any{"topic": "hello"}); code != 200 {
		t.Fatal(code)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tail exited %d: %s", code, errOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("tail did not stop after 2 frames; stdout %q stderr %q", out.String(), errOut.String())
	}
	// -o json prints every frame as one line, system frames included.
	var topics []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var f testkit.Frame
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("line %q is not a JSON frame", line)
		}
		topics = append(topics, f.Topic)
	}
	got := strings.Join(topics, " ")
	if !strings.HasPrefix(got, "signal/system/welcome signal/system/joined signal/system/synced ") ||
		!strings.Contains(got, "observation/signal/notification/created") || !strings.Contains(got, "hello") || len(topics) != 5 {
		t.Errorf("tail printed topics %v", topics)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func out2(b *bytes.Buffer, mu *sync.Mutex) string {
	mu.Lock()
	defer mu.Unlock()
	return b.String()
}

func TestStatusCommandShowsHealthLagAndDeadLetters(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, nil), []byte("junk"))
	c.Expect("observation/signal/notification/created")
	testkit.Eventually(t, 10*time.Second, "the dead letter", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`) == 1
	})
	out, errOut, code := run(t, "status", "-o", "json")
	var st struct {
		Instance    string `json:"instance"`
		Ready       bool   `json:"ready"`
		Connections struct {
			Local, Total int
		} `json:"connections"`
		Consumer struct {
			Group string `json:"group"`
			Lag   []struct {
				Partition int32 `json:"partition"`
				Lag       int64 `json:"lag"`
			} `json:"lag"`
		} `json:"consumer"`
		DeadLetters struct {
			Pending  int            `json:"pending"`
			ByReason map[string]int `json:"byReason"`
		} `json:"deadLetters"`
		Instances int `json:"instances"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -o json: %d %s %s", code, out, errOut)
	}
	if !st.Ready || st.Instance != in.Info.InstanceID || st.Connections.Local != 1 || st.Connections.Total != 1 ||
		st.Consumer.Group != "SIGNAL_NOTIF_CONSUMER_GROUP" || len(st.Consumer.Lag) != 4 ||
		st.DeadLetters.Pending != 1 || st.DeadLetters.ByReason["malformed_json"] != 1 || st.Instances != 1 {
		t.Errorf("status %s", out)
	}
	out, _, code = run(t, "status")
	for _, want := range []string{"READY", in.Info.InstanceID, "database ok", "1 here, 1 on 1 instance", "lag 0", "1 waiting", "malformed_json 1", "PARTITION"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status screen lacks %q:\n%s", want, out)
		}
	}
	if _, _, code := run(t, "status", "--api-key", "wrong"); code != 1 {
		t.Errorf("wrong key: exit %d", code)
	}
}

// tail shows up in no room but the ones it watches, says who it is connected
// as without listing its own room, and Ctrl-C stops it with exit 130.
func TestTailKeepsToItsRoomsAndCtrlCExits130(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	var out, errOut bytes.Buffer
	var mu sync.Mutex
	io := &cli.IOStreams{In: bytes.NewReader(nil), Out: lockedWriter{&out, &mu}, ErrOut: lockedWriter{&errOut, &mu}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan int, 1)
	go func() { done <- cli.Execute(ctx, io, []string{"tail", "--room", "ops/alerts"}) }()
	testkit.Eventually(t, 10*time.Second, "tail to join and leave its own room", func() bool {
		list, err := clientsOf(in)
		return err == nil && len(list) == 1 && strings.Join(list[0].Rooms, ",") == "ops/alerts"
	})
	if code, _ := call(t, "POST", in.URL()+"/socket/websocket/clients/broadcast", testkit.APIKey, map[string]any{"topic": "all/hello", "data": 1}); code != 200 {
		t.Fatal(code)
	}
	testkit.Eventually(t, 10*time.Second, "the broadcast", func() bool { return strings.Contains(out2(&out, &mu), "all/hello") })
	cancel(cli.ErrInterrupted)
	select {
	case code := <-done:
		if code != cli.ExitInterrupted {
			t.Errorf("exit %d after Ctrl-C, want %d", code, cli.ExitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop after Ctrl-C")
	}
	stdout, stderr := out2(&out, &mu), out2(&errOut, &mu)
	if !strings.Contains(stdout, " (no room) all/hello 1") {
		t.Errorf("a broadcast is shown as %q, want \"(no room)\"", stdout)
	}
	if strings.Contains(stderr, "signalctl-tail") || strings.Contains(stdout, "signalctl-tail") || !strings.Contains(stderr, "connected as client ") {
		t.Errorf("tail's own identity shows:\nstdout %s\nstderr %s", stdout, stderr)
	}
	if !strings.HasSuffix(stderr, "Interrupted.\n") {
		t.Errorf("stderr does not end with Interrupted.: %q", stderr)
	}
}

func clientsOf(in *testkit.Instance) ([]client.ClientInfo, error) {
	c, err := client.New(in.URL(), testkit.APIKey)
	if err != nil {
		return nil, err
	}
	return c.Clients(context.Background())
}

// send says how many clients were in the room it sent to.
func TestSendSaysWhoWasInTheRoom(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
	for _, tt := range []struct{ args, want string }{
		{"send --room nobody/here --topic t", "Sent t to room nobody/here, but no client is in it: nobody received it."},
		{"send --room signal/notification/u1 --topic t", "Sent t to room signal/notification/u1 (1 client)."},
		{"broadcast --topic t", "Broadcast t to every client (1 client)."},
	} {
		_, errOut, code := run(t, strings.Fields(tt.args)...)
		if code != 0 || strings.TrimSpace(errOut) != tt.want {
			t.Errorf("%s: exit %d, stderr %q; want %q", tt.args, code, errOut, tt.want)
		}
	}
}
