package tlslisten

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"syscall"
	"testing"
	"time"
)

func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

// The server side gets a descriptor (the hub writes to it directly), the
// client's TCP address, the bytes both ways, and each side's close; a
// client that never handshakes is cut at the timeout without holding up
// the others.
func TestAcceptedConnectionsHaveADescriptorAndCarryBothWays(t *testing.T) {
	cfg, pool := testTLS(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, cfg, 300*time.Millisecond, nil)
	defer l.Close()

	// A silent client first: it must not block the next one.
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	client, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, ok := srv.(syscall.Conn); !ok {
		t.Fatalf("accepted %T has no descriptor", srv)
	}
	// connlimit reads its mark on the accepted TCP connection through it.
	if nc, ok := srv.(interface{ NetConn() net.Conn }); !ok || nc.NetConn().RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("accepted %T does not lead to the TCP connection beneath TLS", srv)
	}
	if srv.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("RemoteAddr %s, want the client's %s", srv.RemoteAddr(), client.LocalAddr())
	}
	// Client to server and back.
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	// Written straight to the descriptor, as the hub does.
	rc, _ := srv.(syscall.Conn).SyscallConn()
	var werr error
	_ = rc.Write(func(fd uintptr) bool { _, werr = syscall.Write(int(fd), []byte("pong")); return true })
	if werr != nil {
		t.Fatal(werr)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	// The server closes: the client sees the end of the stream.
	srv.Close()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(buf); err == nil {
		t.Fatalf("client read %d bytes after the server closed", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server's close did not reach the client")
	}
	// The silent client was cut at the handshake timeout.
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(buf); err == nil {
		t.Fatal("the silent client got bytes")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a client that never handshakes was not cut")
	}
}

// A client that closes: the server reads the end of the stream.
func TestTheClientsCloseReachesTheServer(t *testing.T) {
	cfg, pool := testTLS(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, cfg, time.Second, nil)
	defer l.Close()
	client, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client.Close()
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := srv.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server read after the client closed: %v, want EOF", err)
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}
