package broker

import (
	"context"
	"crypto/tls"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// tlsHandshake completes the server handshake before the first request,
// so the principal is known when requests are handled. On an SSL listener
// the principal is the verified client certificate's subject, as Kafka's
// default principal builder gives it ("User:CN=alice,OU=eng,O=acme"), or
// User:ANONYMOUS without one; on SASL_SSL the SASL exchange sets it.
// Called by serve before the read loop starts.
func (c *conn) tlsHandshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	if c.listener.Protocol != ProtocolSSL {
		return nil
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		dn, err := rfc2253Name(certs[0].RawSubject)
		if err != nil {
			return fmt.Errorf("client certificate subject: %w", err)
		}
		c.principal = "User:" + dn
	}
	return nil
}

// rfc2253Keywords are the attribute types Java's X500Principal.getName()
// prints by keyword (RFC 2253 section 2.3); others print as dotted OIDs
// with the DER value in hex.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// rawATV is one attribute of a distinguished name with its value's DER
// as found in the certificate.
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is one relative distinguished name (encoding/asn1 decodes a
// slice type whose name ends in SET as an ASN.1 SET OF).
type rawRDNSET []rawATV

// rfc2253Name formats a DER-encoded X.509 name as RFC 2253 does and as
// Kafka's principal builder (Java's X500Principal.getName()) shows it: the
// last RDN first, multi-valued RDNs joined by '+', string values of the
// well-known attributes escaped, everything else as #hex of the value's
// DER as found in the certificate.
func rfc2253Name(raw []byte) (string, error) {
	var seq []rawRDNSET
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return "", fmt.Errorf("decode name: %w", err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("decode name: %d trailing bytes", len(rest))
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			if kw, ok := rfc2253Keywords[oid]; ok {
				var s string
				if _, err := asn1.Unmarshal(atv.Value.FullBytes, &s); err == nil {
					b.WriteString(kw + "=" + escapeRFC2253(s))
					continue
				}
				oid = kw
			}
			b.WriteString(oid + "=#" + hex.EncodeToString(atv.Value.FullBytes))
		}
	}
	return b.String(), nil
}

// escapeRFC2253 escapes a string value: the special characters everywhere,
// a leading or trailing space.
func escapeRFC2253(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(`,=+<>#;"\`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' && (i == 0 || i == len(s)-1):
			b.WriteString(`\ `)
		case r == 0:
			b.WriteString(`\00`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
