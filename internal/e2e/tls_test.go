package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/certreload"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// writeServerPair writes p's server certificate and key where serve reads
// them, each through a rename, as a Secret volume or a renewal does.
func writeServerPair(t *testing.T, p *pki, certFile, keyFile string) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(p.Server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{keyFile, "PRIVATE KEY", key}, {certFile, "CERTIFICATE", p.Server.Certificate[0]}} {
		writePEM(t, f.path+".new", f.typ, f.der)
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// httpsGet fetches url trusting only pool, on a connection of its own.
func httpsGet(url string, pool *x509.CertPool) (int, string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.TLS.PeerCertificates[0].Issuer.CommonName + " " + string(b), nil
}

func TestTLSServesWSSAndHTTPSAndRotatesWithoutDroppingConnections(t *testing.T) {
	first, second := newPKI(t, "first"), newPKI(t, "second")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeServerPair(t, first, certFile, keyFile)

	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) {
		c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certFile, keyFile
	})
	if !strings.HasPrefix(in.URL(), "https://") {
		t.Fatalf("instance URL %s", in.URL())
	}

	// https:// and wss:// with the first certificate; plain HTTP is not served.
	if code, body, err := httpsGet(in.URL()+"/healthz", first.Pool); err != nil || code != 200 || !strings.HasPrefix(body, "first test CA") {
		t.Fatalf("https GET /healthz: %d %q %v", code, body, err)
	}
	if resp, err := http.Get("http://" + in.Info.HTTPAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS listener")
		}
	}
	old, _, err := testkit.TryDialWith(t, in.WSURL(), testkit.Token(t, "r1"), testkit.DialOptions{TLS: &tls.Config{RootCAs: first.Pool}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	old.Welcome()
	producer := testkit.Producer(t, env.Broker)
	testkit.Produce(t, producer, testkit.Message("users", []string{"r1"}, nil))
	old.Expect("observation/signal/notification/created")

	// Rotate: the files now hold the second CA's certificate. New
	// handshakes get it once the reloader looks again; the connection made
	// with the first stays open and keeps receiving.
	writeServerPair(t, second, certFile, keyFile)
	time.Sleep(certreload.CheckInterval)
	testkit.Eventually(t, 10*time.Second, "the rotated certificate to be served", func() bool {
		code, body, err := httpsGet(in.URL()+"/healthz", second.Pool)
		return err == nil && code == 200 && strings.HasPrefix(body, "second test CA")
	})
	if _, _, err := httpsGet(in.URL()+"/healthz", first.Pool); err == nil {
		t.Fatal("after the rotation a client trusting only the first CA still connects")
	}
	testkit.Produce(t, producer, testkit.Message("users", []string{"r1"}, nil))
	old.Expect("observation/signal/notification/created")

	// A new wss:// client with the second certificate, and a REST send
	// over https:// reaching both.
	fresh, _, err := testkit.TryDialWith(t, in.WSURL(), testkit.Token(t, "r1"), testkit.DialOptions{TLS: &tls.Config{RootCAs: second.Pool}})
	if err != nil {
		t.Fatalf("wss dial after the rotation: %v", err)
	}
	fresh.Welcome()
	req, _ := http.NewRequest("POST", in.URL()+"/socket/websocket/clients/broadcast", strings.NewReader(`{"topic":"sys/rotated"}`))
	req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: second.Pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("https broadcast: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("https broadcast: %d", resp.StatusCode)
	}
	old.Expect("sys/rotated")
	fresh.Expect("sys/rotated")
}
