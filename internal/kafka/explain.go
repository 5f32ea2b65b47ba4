package kafka

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// saslTrace notes when the brokers last dropped the connection during a
// SASL exchange. Kafka answers wrong credentials with an error code; some
// brokers (the in-process one among them) just close the connection, and
// the client then only sees EOF.
type saslTrace struct{ failedAt atomic.Int64 }

func (s *saslTrace) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if (key == kmsg.SASLAuthenticate.Int16() || key == kmsg.SASLHandshake.Int16()) && e2e.Err() != nil {
		s.failedAt.Store(time.Now().UnixNano())
	}
}

// recent reports a SASL failure in the last minute.
func (s *saslTrace) recent() bool {
	at := s.failedAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < time.Minute
}

// Explain turns a connection failure of client cl (nil: unknown) into one
// sentence that names the setting to look at: wrong credentials, an
// untrusted broker certificate, a refused client certificate. Other errors
// are returned unchanged.
func Explain(cl *kgo.Client, err error) error {
	if err == nil {
		return nil
	}
	if cl != nil && !errors.Is(err, kerr.SaslAuthenticationFailed) {
		for _, h := range cl.OptValues(kgo.WithHooks) {
			if hs, ok := h.([]kgo.Hook); ok {
				for _, h := range hs {
					if t, ok := h.(*saslTrace); ok && t.recent() {
						return fmt.Errorf("the brokers closed the connection during SASL authentication: wrong credentials or mechanism (kafka.sasl.mechanism, kafka.sasl.username, kafka.sasl.password): %w", err)
					}
				}
			}
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	msg := err.Error()
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("the brokers rejected the SASL credentials (kafka.sasl.mechanism, kafka.sasl.username, kafka.sasl.password): %w", err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("the brokers do not accept this SASL mechanism (kafka.sasl.mechanism): %w", err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the brokers' TLS certificate is not signed by a trusted CA (kafka.tls.ca_file): %w", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the brokers' TLS certificate is not valid for the address dialled (kafka.brokers): %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the brokers' TLS certificate is invalid (expired or not for a server): %w", err)
	case strings.Contains(msg, "remote error: tls: certificate required"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate authority"):
		return fmt.Errorf("the brokers refused our TLS client certificate (kafka.tls.cert_file, kafka.tls.key_file): %w", err)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("the brokers do not speak TLS (kafka.tls.enabled): %w", err)
	}
	return err
}
