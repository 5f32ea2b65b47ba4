package certreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate for cn and its key into dir.
func selfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReloadsChangedFilesAndKeepsTheOldPairWhenTheNewOneIsBad(t *testing.T) {
	dir := t.TempDir()
	aCert, aKey := selfSigned(t, dir, "a.test")
	bCert, bKey := selfSigned(t, dir, "b.test")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	copyFile(t, aCert, certFile)
	copyFile(t, aKey, keyFile)

	r, err := New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	served := func() string {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := served(); got != "a.test" {
		t.Fatalf("served %s, want a.test", got)
	}

	// Half a rotation (new certificate, old key): the old pair stays.
	copyFile(t, bCert, certFile)
	now = now.Add(CheckInterval)
	if got := served(); got != "a.test" {
		t.Fatalf("with a mismatched pair on disk served %s, want the previous a.test", got)
	}
	// The key follows: within CheckInterval nothing is looked at, after it
	// the new pair is served.
	copyFile(t, bKey, keyFile)
	if got := served(); got != "a.test" {
		t.Fatalf("files read again before CheckInterval passed: served %s", got)
	}
	now = now.Add(CheckInterval)
	if got := served(); got != "b.test" {
		t.Fatalf("after the rotation served %s, want b.test", got)
	}
	// Files gone (a volume remounting): the current pair stays in service.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	now = now.Add(CheckInterval)
	if got := served(); got != "b.test" {
		t.Fatalf("with the files gone served %s, want b.test", got)
	}
}

func TestNewRefusesAMissingOrMismatchedPair(t *testing.T) {
	dir := t.TempDir()
	aCert, _ := selfSigned(t, dir, "a.test")
	_, bKey := selfSigned(t, dir, "b.test")
	for _, tc := range []struct{ name, cert, key string }{
		{"missing", filepath.Join(dir, "none.pem"), bKey},
		{"mismatched", aCert, bKey},
		{"key unset", aCert, ""},
	} {
		if _, err := New(tc.cert, tc.key, nil); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}
