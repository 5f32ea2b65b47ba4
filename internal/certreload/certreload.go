package certreload

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a handshake looks at the files: a
// stat of each, so a flood of handshakes costs no file reads.
const CheckInterval = time.Second

// Reloader holds the current certificate of a cert and key file pair.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of the files the certificate was read from
	checked time.Time
}

// fileStamp tells whether a file changed: a Secret volume swaps a symlink,
// an editor or a renewal rewrites the file, and each changes one of these.
type fileStamp struct {
	mod  time.Time
	size int64
}

// New reads the pair once: a missing or bad pair is an error at start,
// never a server that refuses every handshake.
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("http.tls_cert_file and http.tls_key_file must be set together")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	r.checked = r.now()
	return r, nil
}

func (r *Reloader) stat() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

func (r *Reloader) load(stamp [2]fileStamp) error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// read again first when the files changed since it was read. A pair that
// fails to load (half written, key and certificate not matching yet) keeps
// the previous certificate in service and is tried again at the next check.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= CheckInterval {
		r.checked = now
		stamp, err := r.stat()
		switch {
		case err != nil:
			r.log.Warn("tls: certificate files unreadable: serving the previous certificate", "err", err)
		case stamp != r.stamp:
			if err := r.load(stamp); err != nil {
				r.log.Warn("tls: new certificate files do not load: serving the previous certificate", "err", err)
			} else {
				r.log.Info("tls: certificate reloaded", "cert", r.certFile, "not_after", r.cert.Leaf.NotAfter)
			}
		}
	}
	return r.cert, nil
}

// Config is a server TLS configuration with modern defaults: TLS 1.2 at
// least (Go's default cipher suites, all AEAD with forward secrecy) and
// HTTP/1.1 only, since WebSocket upgrades take over an HTTP/1.1 connection.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}
