package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// JWKS defaults.
const (
	// DefaultJWKSMinRefresh is the least time between two fetches: a flood of
	// tokens with unknown kids costs the key server one request per period.
	DefaultJWKSMinRefresh = 10 * time.Second
	// DefaultJWKSMaxAge is how long fetched keys are trusted before the next
	// token fetches them again (a key removed from the set stops working
	// within this time).
	DefaultJWKSMaxAge = 10 * time.Minute
	jwksTimeout       = 5 * time.Second
	jwksMaxBytes      = 1 << 20
)

// checkJWKSURL allows https, and http only to a loopback address (a key
// server on the same host, or a test).
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("auth.jwks_url: %w", err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("auth.jwks_url %q must be https:// (or http:// on a loopback address): keys fetched in the clear could be swapped", raw)
}

// jwksClient is base (default: a client with jwksTimeout) made to follow
// only redirects that checkJWKSURL allows: the rule holds for every request
// of every fetch, not only for the configured URL (a redirect to plain
// http on another host would let anyone on the path swap the keys).
func jwksClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: jwksTimeout}
	if base != nil {
		c = new(http.Client)
		*c = *base
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkJWKSURL(req.URL.String()); err != nil {
			return fmt.Errorf("refused redirect from %s: %w", via[len(via)-1].URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return nil
	}
	return c
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwks caches the keys of a JWKS URL by kid. A lookup of an unknown kid, or
// of keys older than maxAge, fetches the set again, at most once per
// minRefresh; concurrent lookups wait for the same fetch. When a fetch fails
// the keys already known keep working.
type jwks struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxAge     time.Duration
	log        *slog.Logger

	mu       sync.Mutex
	keys     map[string]*publicKey
	loaded   time.Time     // last successful fetch
	tried    time.Time     // last attempt
	lastErr  error         // of the last attempt
	inflight chan struct{} // closed when the running fetch ends
}

// key returns the key with kid, fetching the set when needed and allowed.
func (j *jwks) key(kid string) (*publicKey, error) {
	j.mu.Lock()
	k, ok := j.keys[kid]
	if ok && time.Since(j.loaded) < j.maxAge {
		j.mu.Unlock()
		return k, nil
	}
	j.refreshLocked() // unlocks
	j.mu.Lock()
	defer j.mu.Unlock()
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	if j.lastErr != nil {
		return nil, fmt.Errorf("no key %q from auth.jwks_url (its last fetch failed: %v)", kid, j.lastErr)
	}
	return nil, fmt.Errorf("no key %q in auth.jwks_url", kid)
}

// refreshLocked fetches the set if no fetch ran within minRefresh, or waits
// for the one running. Called with mu held; returns with it released.
func (j *jwks) refreshLocked() {
	if ch := j.inflight; ch != nil {
		j.mu.Unlock()
		<-ch
		return
	}
	if !j.tried.IsZero() && time.Since(j.tried) < j.minRefresh {
		j.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	j.inflight, j.tried = ch, time.Now()
	j.mu.Unlock()

	keys, err := j.fetch()

	j.mu.Lock()
	j.lastErr = err
	if err == nil {
		j.keys, j.loaded = keys, time.Now()
	}
	j.inflight = nil
	j.mu.Unlock()
	close(ch)
	if err != nil {
		j.log.Warn("cannot fetch auth.jwks_url; the keys already known stay in use", "url", j.url, "err", err)
	}
}

// ready reports an error until one fetch has worked.
func (j *jwks) ready() error {
	j.mu.Lock()
	if !j.loaded.IsZero() {
		j.mu.Unlock()
		return nil
	}
	j.refreshLocked()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.loaded.IsZero() {
		if j.lastErr != nil {
			return fmt.Errorf("no keys from auth.jwks_url yet: %w", j.lastErr)
		}
		return errors.New("no keys from auth.jwks_url yet")
	}
	return nil
}

func (j *jwks) fetch() (map[string]*publicKey, error) {
	if err := checkJWKSURL(j.url); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := checkJWKSURL(resp.Request.URL.String()); err != nil { // the URL answered, after redirects
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", jwksMaxBytes)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("the key set is not JSON {\"keys\":[…]}: %w", err)
	}
	keys := make(map[string]*publicKey, len(set.Keys))
	for _, raw := range set.Keys {
		k, err := raw.parse()
		if err != nil {
			j.log.Warn("auth.jwks_url: key skipped", "kid", raw.Kid, "kty", raw.Kty, "err", err)
			continue
		}
		keys[k.kid] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set holds no usable key (RSA ≥ 2048 bits, EC P-256 or Ed25519, each with a kid)")
	}
	return keys, nil
}
