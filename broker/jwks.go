package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// oauthMissRefreshInterval is how often one unknown kid may make the key
// set be fetched again, so tokens naming a kid that does not exist cannot
// turn into a stream of fetches.
const oauthMissRefreshInterval = 30 * time.Second

// maxMissKids bounds the remembered unknown kids; the memory is cleared
// when full (the limit then applies afresh).
const maxMissKids = 1024

// jwksFetchAttempts bounds the tries of one fetch, waits between them
// following the retry backoff.
const jwksFetchAttempts = 3

// jwksFetchTimeout bounds one https request (Kafka's
// sasl.oauthbearer.jwks connect and read timeouts are 10 s each).
const jwksFetchTimeout = 10 * time.Second

// parseJWKSURL checks a sasl.oauthbearer.jwks.endpoint.url.
func parseJWKSURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS endpoint URL %q: %w", ErrInvalidConfig, s, err)
	}
	switch {
	case u.Scheme == "file" && u.Path != "":
	case u.Scheme == "https" && u.Host != "":
	default:
		return nil, fmt.Errorf("%w: JWKS endpoint URL %q: want file:///path or https://host/path", ErrInvalidConfig, s)
	}
	return u, nil
}

// jwksSource is the key set of a JWKS endpoint. It is fetched at start,
// again every refresh interval by run (owned by the broker's background
// group), and at once when a token names a kid it lacks (rate limited per
// kid). A failed fetch keeps the keys held before.
type jwksSource struct {
	u       *url.URL
	client  *http.Client // nil for file://
	refresh time.Duration
	backoff time.Duration
	maxWait time.Duration
	log     *slog.Logger
	ctx     context.Context // the broker's: ends fetches at shutdown

	// fetchMu serializes fetches, so concurrent misses cost one fetch.
	fetchMu sync.Mutex
	// mu guards set, fetched and missed; never held during a fetch.
	mu      sync.Mutex
	set     []jwk
	fetched time.Time
	missed  map[string]time.Time // kid -> when it last caused a fetch
}

func newJWKSSource(ctx context.Context, o OAuthBearerConfig, log *slog.Logger) (*jwksSource, error) {
	u, err := parseJWKSURL(o.JWKSEndpointURL)
	if err != nil {
		return nil, err
	}
	s := &jwksSource{u: u, refresh: o.JWKSRefresh, backoff: o.JWKSRetryBackoff, maxWait: o.JWKSRetryBackoffMax,
		log: log, ctx: ctx, missed: map[string]time.Time{}}
	if u.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.JWKSCAFile != "" {
			if tc.RootCAs, err = readCAPool(o.JWKSCAFile); err != nil {
				return nil, fmt.Errorf("JWKS endpoint CA: %w", err)
			}
		}
		s.client = &http.Client{Timeout: jwksFetchTimeout, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return s, nil
}

// fetchOnce reads and parses the key set once.
func (s *jwksSource) fetchOnce() ([]jwk, error) {
	var doc []byte
	if s.client == nil {
		f, err := os.Open(s.u.Path)
		if err != nil {
			return nil, fmt.Errorf("read JWKS file: %w", err)
		}
		defer f.Close()
		if doc, err = io.ReadAll(io.LimitReader(f, maxJWKS+1)); err != nil {
			return nil, fmt.Errorf("read JWKS file %s: %w", s.u.Path, err)
		}
	} else {
		req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("JWKS request: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch JWKS from %s: HTTP status %s", s.u.Redacted(), resp.Status)
		}
		if doc, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1)); err != nil {
			return nil, fmt.Errorf("read JWKS from %s: %w", s.u.Redacted(), err)
		}
	}
	return parseJWKS(doc)
}

// fetch fetches the key set with bounded retries and installs it.
func (s *jwksSource) fetch() error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	wait := s.backoff
	var err error
	for attempt := 1; attempt <= jwksFetchAttempts; attempt++ {
		var set []jwk
		if set, err = s.fetchOnce(); err == nil {
			s.mu.Lock()
			s.set, s.fetched = set, time.Now()
			s.mu.Unlock()
			return nil
		}
		if attempt == jwksFetchAttempts {
			break
		}
		select {
		case <-s.ctx.Done():
			return fmt.Errorf("JWKS fetch: %w (%w)", err, s.ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, s.maxWait)
	}
	return fmt.Errorf("JWKS fetch failed %d times, last: %w", jwksFetchAttempts, err)
}

// run refreshes the key set every refresh interval until ctx ends.
func (s *jwksSource) run(ctx context.Context) {
	t := time.NewTicker(s.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.fetch(); err != nil && ctx.Err() == nil {
				s.log.Warn("JWKS refresh failed; keeping the previous keys", "url", s.u.Redacted(), "err", err)
			}
		}
	}
}

// match returns the held keys of kid ("" matches every key).
func (s *jwksSource) match(kid string) []jwk {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []jwk
	for _, k := range s.set {
		if kid == "" || k.kid == kid {
			out = append(out, k)
		}
	}
	return out
}

// errNoKeys means no key of the key set matched.
var errNoKeys = errors.New("no matching key in the JWKS")

func (s *jwksSource) keys(kid string) ([]jwk, error) {
	if ks := s.match(kid); len(ks) > 0 {
		return ks, nil
	}
	s.mu.Lock()
	last, seen := s.missed[kid]
	allow := !seen || time.Since(last) >= oauthMissRefreshInterval
	if allow {
		if len(s.missed) >= maxMissKids {
			clear(s.missed)
		}
		s.missed[kid] = time.Now()
	}
	s.mu.Unlock()
	if !allow {
		return nil, fmt.Errorf("%w (kid %q)", errNoKeys, kid)
	}
	s.log.Debug("JWKS has no key of the token's kid; refreshing", "kid", kid)
	if err := s.fetch(); err != nil {
		return nil, err
	}
	if ks := s.match(kid); len(ks) > 0 {
		return ks, nil
	}
	return nil, fmt.Errorf("%w (kid %q)", errNoKeys, kid)
}
