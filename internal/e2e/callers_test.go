package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/testkit"
)

// dialFrom opens a TCP connection to addr from the loopback address local
// (127.0.0.0/8 is all loopback on Linux: each is another source address).
func dialFrom(t *testing.T, local, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// keepAliveRequest sends one request on c and reads its answer; the
// connection stays open unless the server closes it.
func keepAliveRequest(t *testing.T, c net.Conn, r *bufio.Reader, path, cred string) (int, string, bool) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: signal\r\n"
	if cred != "" {
		req += "Authorization: Bearer " + cred + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return 0, err.Error(), true
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err.Error(), true
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Close
}

// Item 5: ten slow PUT /memberships bodies held the whole pool (a
// connection and the group lock each while the body trickled in): inbox
// reads waited 29 s each.
func TestSlowMembershipBodiesDoNotHoldTheDatabasePool(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env, "SIGNAL_DATABASE_MAX_CONNS=4", "SIGNAL_HTTP_READ_TIMEOUT=25s")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		c, _ := dialFrom(t, "127.0.0.1", p.addr)
		fmt.Fprintf(c, "PUT /memberships/org/slow-%d HTTP/1.1\r\nHost: signal\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"recipientIds\":[\"a\"", i, testkit.APIKey)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if _, err := io.WriteString(c, `,"b"`); err != nil {
					return
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	time.Sleep(time.Second) // the bodies have started
	client := &http.Client{Timeout: 20 * time.Second}
	for i := 0; i < 8; i++ {
		start := time.Now()
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/notifications?recipientId=u1", nil)
		req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("inbox read %d while slow bodies arrive: %v", i, err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > 3*time.Second {
			t.Fatalf("inbox read %d: %d after %s, want 200 at once (the slow bodies must not hold the pool)", i, resp.StatusCode, took)
		}
	}
}

// Item 6: one unauthenticated address opened 20,000 idle keep-alive
// connections, every file descriptor of the server; a new /healthz timed out.
func TestIdleKeepAlivesAreCappedPerAddressAndHealthChecksStillGetIn(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env, "SIGNAL_HTTP_MAX_CONNECTIONS_PER_IP=30", "SIGNAL_HTTP_MAX_CONNECTIONS=40")
	var open []net.Conn
	// Per address: 30 idle keep-alives from 127.0.0.3, then a refusal.
	for i := 0; i < 30; i++ {
		c, r := dialFrom(t, "127.0.0.3", p.addr)
		open = append(open, c)
		if code, body, closed := keepAliveRequest(t, c, r, "/healthz", ""); code != 200 || closed {
			t.Fatalf("connection %d from 127.0.0.3: %d %s (closed %v)", i, code, body, closed)
		}
	}
	c, r := dialFrom(t, "127.0.0.3", p.addr)
	if code, body, closed := keepAliveRequest(t, c, r, "/healthz", ""); code != http.StatusTooManyRequests || !closed || !strings.Contains(body, "too_many_connections") {
		t.Fatalf("connection 31 from 127.0.0.3: %d %s (closed %v), want 429 too_many_connections and a close", code, body, closed)
	}
	// In all: another address fills the rest; past http.max_connections
	// a connection may still ask /healthz and /readyz, nothing else.
	reserved := false
	for i := 0; i < 15 && !reserved; i++ {
		c, r := dialFrom(t, "127.0.0.4", p.addr)
		open = append(open, c)
		code, body, closed := keepAliveRequest(t, c, r, "/socket/websocket/clients", testkit.APIKey)
		switch {
		case code == 200 && !closed:
		case code == http.StatusServiceUnavailable && closed && strings.Contains(body, "server_full"):
			reserved = true
		default:
			t.Fatalf("connection %d from 127.0.0.4: %d %s (closed %v)", i, code, body, closed)
		}
	}
	if !reserved {
		t.Fatal("45 connections open and none refused: http.max_connections (40) does not hold")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		c, r := dialFrom(t, "127.0.0.5", p.addr)
		if code, body, closed := keepAliveRequest(t, c, r, path, ""); code != 200 || !closed {
			t.Errorf("%s past the cap: %d %s (closed %v), want 200 on the health-check reserve", path, code, body, closed)
		}
	}
	for _, c := range open {
		c.Close()
	}
	testkit.Eventually(t, 10*time.Second, "the refusals counted", func() bool {
		return procMetric(t, p, `signal_http_connections_refused_total{reason="too_many_connections"}`) >= 1
	})
}

// Item 8: the https rule of auth.jwks_url held for the configured URL
// only: the key server could redirect to plain http on another host, and a
// token signed with the key found there was accepted. (The other host is
// reached through an HTTP proxy on loopback, as anyone on the path would.)
func TestJWKSRedirectsToPlainHTTPElsewhereAreNotFollowed(t *testing.T) {
	env := testkit.NewEnv(t)
	b64 := base64.RawURLEncoding.EncodeToString
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := key.PublicKey.Bytes()
	attackerSet, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "kid": "attacker-1", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}}})
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1) // "GET http://keys.attacker.test/… HTTP/1.1": a proxy request
		w.Header().Set("Content-Type", "application/json")
		w.Write(attackerSet)
	}))
	t.Cleanup(proxy.Close)
	keyServer := httptest.NewServer(http.RedirectHandler("http://keys.attacker.test/jwks.json", http.StatusFound))
	t.Cleanup(keyServer.Close)

	p := launchServe(t, env, "SIGNAL_AUTH_JWKS_URL="+keyServer.URL+"/jwks.json",
		"HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=")
	testkit.Eventually(t, 30*time.Second, "serve to answer /healthz", func() bool {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "victim", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
	tok.Header["kid"] = "attacker-1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := testkit.TryDial(t, p.wsURL(), signed)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("a token signed with the key behind a redirect to plain http: upgrade %v (status %d), want 401", err, status)
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("the redirect was followed %d time(s)", n)
	}
}

// Item 9: every unauthenticated /readyz cost a database round trip and a
// broker request: 3,931 a second from one client.
func TestReadyzAnswersFromAShortCache(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, testkit.Topic), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var pings atomic.Int64
	cluster.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		pings.Add(1) // the readiness check pings the brokers with a Metadata request
		return nil, nil, false
	})
	env := testkit.NewEnv(t)
	env.Broker = cluster.ListenAddrs()[0]
	p := startServe(t, env)
	before := pings.Load()
	start := time.Now()
	const requests = 300
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < requests/10; i++ {
				if code := get(t, "http://"+p.addr+"/readyz"); code != 200 {
					t.Errorf("/readyz %d", code)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	// One run of the checks per second at most, plus the consumer's own
	// metadata refreshes.
	if n, most := pings.Load()-before, int64(took/time.Second)+6; n > most {
		t.Errorf("%d /readyz in %s asked the broker %d times, want at most %d", requests, took.Round(time.Millisecond), n, most)
	}
}

// Item 10: /metrics is public on http.addr by default, and nothing said so.
func TestStartUpWarnsWhenMetricsShareThePublicListener(t *testing.T) {
	env := testkit.NewEnv(t)
	const warning = "GET /metrics is served without a credential on http.addr"
	p := startServe(t, env)
	testkit.Eventually(t, 5*time.Second, "the warning", func() bool { return strings.Contains(p.logs.String(), warning) })
	p.term(30 * time.Second)
	q := startServe(t, env, "SIGNAL_HTTP_METRICS_ADDR="+freeAddr(t))
	if strings.Contains(q.logs.String(), warning) {
		t.Errorf("warned with http.metrics_addr set:\n%s", q.logs.String())
	}
}

// Item 11: a bad membership cursor answered 503 "database unavailable", and
// a client that hung up was logged and counted as a database failure.
func TestClientMistakesAre4xxAndAHangUpIsNotADatabaseFailure(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	for _, cursor := range []string{"m\x00", "m\xff", "m\x01x"} {
		u := "http://" + p.addr + "/memberships/org/o1?cursor=" + base64.RawURLEncoding.EncodeToString([]byte(cursor))
		if code, body := call(t, "GET", u, testkit.APIKey, nil); code != http.StatusBadRequest {
			t.Errorf("cursor %q: %d %v, want 400", cursor, code, body)
		}
	}
	// A client hangs up while its inbox read waits for a lock.
	ctx := context.Background()
	tx, err := env.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c, _ := dialFrom(t, "127.0.0.1", p.addr)
	fmt.Fprintf(c, "GET /notifications?recipientId=u1 HTTP/1.1\r\nHost: signal\r\nAuthorization: Bearer %s\r\n\r\n", testkit.APIKey)
	time.Sleep(500 * time.Millisecond)
	c.Close()
	route := `signal_http_requests_total{code="%d",route="GET /notifications"}`
	testkit.Eventually(t, 10*time.Second, "the request to end", func() bool {
		return procMetric(t, p, fmt.Sprintf(route, 499)) == 1 || procMetric(t, p, fmt.Sprintf(route, 503)) >= 1
	})
	tx.Rollback(ctx)
	if v := procMetric(t, p, fmt.Sprintf(route, 503)); v != -1 {
		t.Errorf("a client that hung up was counted as a 503 (%v)", v)
	}
	if strings.Contains(p.logs.String(), `"level":"WARN","msg":"cannot read notifications"`) {
		t.Errorf("a client that hung up was logged as a database failure:\n%s", p.logs.String())
	}
}

// Item 12: any API key could do anything: read any inbox, broadcast,
// rewrite memberships.
func TestAPIKeysCarryScopesAndAForbiddenOneNamesTheScope(t *testing.T) {
	env := testkit.NewEnv(t)
	const (
		sender = "sender-key-0123456789abcdef"
		reader = "reader-key-0123456789abcdef"
		admin  = "admin-key-0123456789abcdefg"
	)
	p := startServe(t, env, "SIGNAL_API_KEYS="+testkit.APIKey+","+sender+":send,"+reader+":inbox+status,"+admin+":admin")
	base := "http://" + p.addr
	type req struct{ method, path, scope string }
	routes := []req{
		{"POST", "/socket/websocket/clients/broadcast", auth.ScopeSend},
		{"GET", "/notifications?recipientId=u1", auth.ScopeInbox},
		{"GET", "/preferences?recipientId=u1", auth.ScopeInbox},
		{"GET", "/memberships/org/o1", auth.ScopeMembers},
		{"PUT", "/memberships/org/o1", auth.ScopeMembers},
		{"GET", "/status", auth.ScopeStatus},
		{"GET", "/socket/websocket/clients", auth.ScopeStatus},
	}
	bodies := map[string]any{"POST": map[string]any{"topic": "t", "data": 1}, "PUT": map[string]any{"recipientIds": []string{"m1"}}}
	allowed := map[string][]string{
		testkit.APIKey: auth.Scopes, admin: auth.Scopes,
		sender: {auth.ScopeSend}, reader: {auth.ScopeInbox, auth.ScopeStatus},
	}
	for key, scopes := range allowed {
		for _, rt := range routes {
			code, body := call(t, rt.method, base+rt.path, key, bodies[rt.method])
			ok := strings.Contains(strings.Join(scopes, " "), rt.scope)
			switch {
			case ok && code >= 400:
				t.Errorf("%s %s with a key of %v: %d %v", rt.method, rt.path, scopes, code, body)
			case !ok && (code != http.StatusForbidden || body["error"] != "forbidden" || body["scope"] != rt.scope):
				t.Errorf("%s %s with a key of %v: %d %v, want 403 {\"error\":\"forbidden\",\"scope\":%q}", rt.method, rt.path, scopes, code, body, rt.scope)
			}
		}
	}
	// A token still reads its own inbox, whatever the keys.
	if code, body := call(t, "GET", base+"/notifications", testkit.Token(t, "u1"), nil); code != 200 {
		t.Errorf("a token's own inbox: %d %v", code, body)
	}
}

// Item 13: a JWT with crit naming an unknown extension, and one whose exp
// is a string, were accepted; kafka.brokers=embedded ran without --dev.
func TestTokensFollowTheRFCsAndEmbeddedKafkaNeedsDev(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	exp := time.Now().Add(time.Hour).Unix()
	for name, tok := range map[string]string{
		"crit naming an unknown extension": rawHS256(`{"alg":"HS256","typ":"JWT","crit":["x-policy"],"x-policy":"y"}`, fmt.Sprintf(`{"sub":"u1","exp":%d}`, exp)),
		"a string exp":                     rawHS256(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"u1","exp":"%d"}`, exp)),
	} {
		_, resp, err := testkit.TryDial(t, p.wsURL(), tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: the upgrade was not refused with 401 (%v)", name, err)
		}
		if code, _ := call(t, "GET", "http://"+p.addr+"/notifications", tok, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: inbox %d, want 401", name, code)
		}
	}
	good := rawHS256(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"u1","exp":%d}`, exp))
	testkit.Dial(t, p.wsURL(), good).Welcome()

	cmd := launch.Command(signalctl(t), "serve")
	cmd.Env = append(serveEnv(t, env, freeAddr(t)), "SIGNAL_KAFKA_BROKERS=embedded", "SIGNAL_KAFKA_EMBEDDED_PORT=0")
	done := make(chan struct{})
	var out []byte
	go func() { out, _ = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("serve with kafka.brokers=embedded and no --dev ran:\n%s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "--dev") {
		t.Errorf("exit %d, want 1 with a message that names --dev:\n%s", code, out)
	}
}

// rawHS256 signs header and payload as they are with the test secret.
func rawHS256(header, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, _ := jwt.SigningMethodHS256.Sign(in, []byte(testkit.JWTSecret))
	return in + "." + enc.EncodeToString(sig)
}
