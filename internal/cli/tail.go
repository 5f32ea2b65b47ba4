package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/user"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lxzan/gws"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/hub"
)

// TailOptions are the inputs of tail.
type TailOptions struct {
	g      *globals
	Rooms  []string
	Token  string
	Since  string
	Output string
	Count  int
	flags  map[string]*pflag.Flag
}

func newCmdTail(g *globals) *cobra.Command {
	o := &TailOptions{g: g}
	cmd := &cobra.Command{
		Use:   "tail --room NAME [--room NAME]...",
		Short: "Watch rooms live: connect as a WebSocket client and print frames as they arrive",
		Long: `Connect to a serve instance as a WebSocket client, join the rooms and print
every frame as it arrives, until interrupted. What QA and on-call use to
watch a room.

Without --token it mints a short-lived token allowed into exactly these
rooms, with the configured JWT secret (or the serve --dev one of this
machine), and leaves the room of its own subject, so it shows up in no
room but the ones it watches. After a lost connection it reconnects, and
for notification rooms it asks for what it missed (join with since the last
id it printed).

Each line is: time, room, topic, data. A frame without a room was sent to
every client (broadcast) or to this client alone; it shows "(no room)".
System frames (welcome, joined, errors) go to stderr. Ctrl-C stops it (exit
130).`,
		Example: `  signalctl tail --room signal/notification/u1
  signalctl tail --room 'ops/alerts' --room signal/notification/u2 -o json
  signalctl tail --room signal/notification/u1 --since 01a21c61-12e3-8527-828b-5db963cee5ab`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return tailRun(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Rooms, "room", nil, "room to watch (repeatable)")
	f.StringVar(&o.Token, "token", "", "token to connect with (default: one minted for these rooms)")
	f.StringVar(&o.Since, "since", "", "replay a notification room's stored notifications after this id first")
	f.IntVar(&o.Count, "count", 0, "exit after this many frames from the rooms (0: run until interrupted)")
	_ = cmd.MarkFlagRequired("room")
	addOutputFlag(cmd, &o.Output)
	o.flags = merge(addServerFlags(cmd))
	_ = cmd.RegisterFlagCompletionFunc("room", completeRooms(g))
	return cmd
}

func tailRun(ctx context.Context, o *TailOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return err
	}
	server := serverURL(cfg)
	token, err := o.token(cfg, server)
	if err != nil {
		return err
	}
	var ownRoom string
	if sub := tokenSubject(token); sub != "" {
		ownRoom = event.NotificationRoom(sub)
		if slices.Contains(o.Rooms, ownRoom) {
			ownRoom = "" // watched on purpose: stay
		}
	}
	wsURL, err := socketURL(server)
	if err != nil {
		return err
	}
	t := &tailer{o: o, last: map[string]string{}, frames: make(chan []byte, 1024), ownRoom: ownRoom}
	if o.Since != "" {
		t.last[o.Rooms[0]] = o.Since
	}
	wait := 500 * time.Millisecond
	for {
		err := t.session(ctx, wsURL, token)
		if ctx.Err() != nil || errors.Is(err, errTailDone) {
			return nil
		}
		var fatal *tailFatal
		if errors.As(err, &fatal) {
			return fatal.err
		}
		fmt.Fprintf(o.g.io.ErrOut, "%s %s; reconnecting in %s\n", styled(o.g.io, "11", "Disconnected:"), describeClose(err), wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// check checks tail's flags: the output format, the rooms, --since.
func (o *TailOptions) check() error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	for _, r := range o.Rooms {
		if err := hub.ValidateRoom(r); err != nil {
			return usageErrorf("--room %q: %s", r, err.Message)
		}
	}
	if o.Since != "" && len(o.Rooms) != 1 {
		return usageErrorf("--since needs exactly one --room")
	}
	return nil
}

// token is --token, or one minted for the rooms with the development
// secret of server.
func (o *TailOptions) token(cfg *config.Config, server string) (string, error) {
	if o.Token != "" {
		return o.Token, nil
	}
	// The development secret signs tokens for this clone's serve --dev
	// only: another server would refuse them anyway.
	secret := devSecret(cfg, server)
	if secret == "" {
		return "", fmt.Errorf("no token for %s: pass --token, or set auth.jwt_secret (SIGNAL_AUTH_JWT_SECRET) to mint one", server)
	}
	ttl := 24 * time.Hour
	if m := cfg.Auth.MaxTokenTTL; m > 0 && m < ttl {
		ttl = m
	}
	// The claims serve checks (auth.audience, auth.issuer) go in too.
	spec := auth.SignOptions{Sub: tailSubject(), Rooms: o.Rooms, TTL: ttl, Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer}
	token, err := auth.SignToken(secret, spec)
	if err != nil {
		return "", fmt.Errorf("%w (or pass --token)", err)
	}
	return token, nil
}

// socketURL is the WebSocket endpoint of server (ws, or wss for https).
func socketURL(server string) (string, error) {
	base, err := url.Parse(server)
	if err != nil || base.Host == "" {
		return "", fmt.Errorf("client.server %q is not a URL", server)
	}
	scheme := "ws"
	if base.Scheme == "https" {
		scheme = "wss"
	}
	return scheme + "://" + base.Host + strings.TrimRight(base.Path, "/") + "/socket/websocket", nil
}

var errTailDone = errors.New("done")

type tailFatal struct{ err error }

func (e *tailFatal) Error() string { return e.err.Error() }

func tailSubject() string {
	name := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "signalctl-tail-" + name
}

type tailer struct {
	o       *TailOptions
	last    map[string]string // room → last notification id printed
	frames  chan []byte
	seen    int
	ownRoom string // the token subject's room, left after connecting ("" to stay)
}

// tokenSubject reads the sub claim of a JWT without verifying it (the
// server does): tail only needs to know which room it is put in.
func tokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Sub
}

// describeClose says in words why a connection ended.
func describeClose(err error) string {
	var ce *gws.CloseError
	if !errors.As(err, &ce) {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
			return "the connection was lost"
		}
		return err.Error()
	}
	var why string
	switch ce.Code {
	case 1000:
		why = "the server closed the connection"
	case hub.CloseGoingAway:
		why = "the server is going away (restarting or shutting down)"
	case hub.CloseSlowClient:
		why = "the server dropped this client for reading too slowly"
	case hub.ClosePolicy:
		why = "the server dropped this client for sending too many actions"
	case hub.CloseTooLarge:
		why = "the server refused a frame as too large"
	case 1006:
		why = "the connection was lost"
	case 1011:
		why = "the server hit an internal error"
	case hub.CloseTokenExpired:
		why = "the token expired"
	default:
		why = "the server closed the connection"
	}
	if r := strings.TrimSpace(string(ce.Reason)); r != "" {
		why += ": " + r
	}
	return fmt.Sprintf("%s (close code %d)", why, ce.Code)
}

type tailHandler struct {
	gws.BuiltinEventHandler
	frames chan []byte
	closed chan error
}

func (h *tailHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	b := append([]byte(nil), m.Bytes()...)
	m.Close()
	h.frames <- b
}

func (h *tailHandler) OnClose(_ *gws.Conn, err error) { h.closed <- err }

// session runs one connection: join, print, until it ends.
func (t *tailer) session(ctx context.Context, wsURL, token string) error {
	io := t.o.g.io
	h := &tailHandler{frames: t.frames, closed: make(chan error, 1)}
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	conn, resp, err := gws.NewClient(h, &gws.ClientOption{Addr: wsURL, RequestHeader: hdr, HandshakeTimeout: 10 * time.Second})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return &tailFatal{fmt.Errorf("the server refused the token (401): check auth.jwt_secret or --token")}
		}
		return fmt.Errorf("connect %s: %w", wsURL, err)
	}
	defer conn.NetConn().Close()
	go conn.ReadLoop()
	go func() { <-ctx.Done(); _ = conn.WriteClose(1000, nil) }()
	for _, room := range t.o.Rooms {
		a := map[string]string{"action": "join", "room": room}
		if id := t.last[room]; id != "" {
			a["since"] = id
		}
		b, _ := json.Marshal(a)
		if err := conn.WriteMessage(gws.OpcodeText, b); err != nil {
			return err
		}
	}
	if t.ownRoom != "" {
		b, _ := json.Marshal(map[string]string{"action": "leave", "room": t.ownRoom})
		if err := conn.WriteMessage(gws.OpcodeText, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(io.ErrOut, "Connected to %s, watching %s. Ctrl-C to stop.\n", wsURL, strings.Join(t.o.Rooms, ", "))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-h.closed:
			if err == nil {
				err = errors.New("connection closed")
			}
			return err
		case b := <-t.frames:
			if done := t.print(b); done {
				return errTailDone
			}
		}
	}
}

// print writes one frame; it reports true when --count is reached.
func (t *tailer) print(b []byte) bool {
	io := t.o.g.io
	var f tailFrame
	if json.Unmarshal(b, &f) != nil {
		fmt.Fprintf(io.ErrOut, "unreadable frame: %q\n", b)
		return false
	}
	if t.skip(f) {
		return false
	}
	if f.Topic == event.TopicNotificationCreated {
		var n struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(f.Data, &n) == nil && n.ID != "" {
			t.last[f.Room] = n.ID
		}
	}
	system := strings.HasPrefix(f.Topic, "signal/system/")
	t.write(b, f, system)
	if !system {
		t.seen++
	}
	return t.o.Count > 0 && t.seen >= t.o.Count
}

// tailFrame is a server frame as tail reads it.
type tailFrame struct {
	Topic string          `json:"topic"`
	Room  string          `json:"room"`
	Data  json.RawMessage `json:"data"`
}

// skip reports the frames tail does not print: the answer to leaving its
// own room, the stream's bookkeeping, and welcome (said on stderr).
func (t *tailer) skip(f tailFrame) bool {
	var d struct {
		Room     string `json:"room"`
		ClientID string `json:"clientId"`
	}
	switch f.Topic {
	case event.TopicLeft:
		if t.ownRoom != "" && bytes.Contains(f.Data, []byte(`"room":`)) && json.Unmarshal(f.Data, &d) == nil && d.Room == t.ownRoom {
			return true // the answer to tail's own housekeeping
		}
	case event.TopicSynced:
		_ = json.Unmarshal(f.Data, &d)
		// The stream's bookkeeping (-o json shows it for the rooms watched).
		return t.o.Output != FormatJSON || d.Room == t.ownRoom
	case event.TopicWelcome:
		if t.o.Output != FormatJSON {
			io := t.o.g.io
			_ = json.Unmarshal(f.Data, &d)
			fmt.Fprintf(io.ErrOut, "%s %s connected as client %s\n", time.Now().Format("15:04:05.000"), styled(io, "8", f.Topic), d.ClientID)
			return true
		}
	}
	return false
}

// write prints frame b: as it is with -o json, else a system frame on
// stderr and the others on stdout, each after the time and its room.
func (t *tailer) write(b []byte, f tailFrame, system bool) {
	io := t.o.g.io
	ts := time.Now().Format("15:04:05.000")
	switch {
	case t.o.Output == FormatJSON:
		fmt.Fprintln(io.Out, string(b))
	case system:
		fmt.Fprintf(io.ErrOut, "%s %s %s\n", ts, styled(io, "8", f.Topic), f.Data)
	default:
		room := f.Room
		if room == "" {
			room = "(no room)" // a broadcast, or a send to this client
		}
		if io.ColorOut() {
			fmt.Fprintf(io.Out, "%s %s %s %s\n", ts, styledOut(io, "12", room), styledOut(io, "10", f.Topic), f.Data)
		} else {
			fmt.Fprintf(io.Out, "%s %s %s %s\n", ts, room, f.Topic, f.Data)
		}
	}
}
