package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// Algorithms of asymmetric keys. Each key verifies exactly one: the one its
// type implies, so a token cannot pick another (no RS/HS confusion).
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

// minRSABits refuses keys that are too short to trust.
const minRSABits = 2048

// publicKey is a verification key pinned to one algorithm.
type publicKey struct {
	kid string
	alg string
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// pinned returns the key with the algorithm its type implies.
func pinned(kid string, key any) (*publicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits: at least %d are required", k.N.BitLen(), minRSABits)
		}
		return &publicKey{kid: kid, alg: AlgRS256, key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return &publicKey{kid: kid, alg: AlgES256, key: k}, nil
	case ed25519.PublicKey:
		return &publicKey{kid: kid, alg: AlgEdDSA, key: k}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T: use RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)", key)
}

// LoadPublicKeyFile reads one PEM public key (PUBLIC KEY, RSA PUBLIC KEY or
// CERTIFICATE).
func loadPublicKeyFile(path string) (*publicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth.public_key_file: %w", err)
	}
	k, err := parsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("auth.public_key_file %s: %w", path, err)
	}
	return k, nil
}

func parsePublicKeyPEM(b []byte) (*publicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want a PUBLIC KEY (never a private key)", block.Type)
	}
	if err != nil {
		return nil, err
	}
	return pinned("", key)
}

// jwk is one key of a JWKS (RFC 7517), the fields Signal reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parse turns a JWK into a pinned key. A key whose alg is set must name the
// algorithm its type implies; symmetric keys ("oct") are never accepted.
func (j jwk) parse() (*publicKey, error) {
	if j.Kid == "" {
		return nil, errors.New("no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	key, err := j.publicKey()
	if err != nil {
		return nil, err
	}
	k, err := pinned(j.Kid, key)
	if err != nil {
		return nil, err
	}
	if j.Alg != "" && j.Alg != k.alg && !(k.alg == AlgEdDSA && j.Alg == "Ed25519") {
		return nil, fmt.Errorf("alg %q does not fit a %s key (%s)", j.Alg, j.Kty, k.alg)
	}
	return k, nil
}

// publicKey decodes the key of the JWK's type: RSA, EC P-256 or OKP
// Ed25519.
func (j jwk) publicKey() (any, error) {
	switch j.Kty {
	case "RSA":
		return j.rsaKey()
	case "EC":
		return j.ecKey()
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q: only Ed25519 is supported", j.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 x must be 32 bytes, base64url")
		}
		return ed25519.PublicKey(x), nil
	default:
		return nil, fmt.Errorf("key type %q is not accepted (RSA, EC P-256, OKP Ed25519)", j.Kty)
	}
}

// rsaKey decodes n and e; an exponent outside 3..2^31-1 is refused.
func (j jwk) rsaKey() (any, error) {
	n, err1 := b64int(j.N)
	e, err2 := b64int(j.E)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("RSA n/e: %w", err)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("RSA exponent out of range")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ecKey decodes a P-256 point, which must lie on the curve.
func (j jwk) ecKey() (any, error) {
	if j.Crv != "P-256" {
		return nil, fmt.Errorf("EC curve %q: only P-256 is supported", j.Crv)
	}
	x, err1 := base64.RawURLEncoding.DecodeString(j.X)
	y, err2 := base64.RawURLEncoding.DecodeString(j.Y)
	if err := errors.Join(err1, err2); err != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("EC x/y must be 32 bytes each, base64url")
	}
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pk, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not base64url")
	}
	return new(big.Int).SetBytes(b), nil
}
