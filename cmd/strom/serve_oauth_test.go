package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/stromhq/strom/broker"
)

// TestServeOAuthFlags maps the OAUTHBEARER and re-authentication flags
// (named after Kafka's config keys, in Kafka's units) onto broker.Config.
func TestServeOAuthFlags(t *testing.T) {
	full := broker.DefaultOAuthBearerConfig()
	full.JWKSEndpointURL = "https://idp.example/jwks"
	full.JWKSRefresh = 90 * time.Second
	full.JWKSRetryBackoff = 50 * time.Millisecond
	full.JWKSRetryBackoffMax = 2 * time.Second
	full.JWKSCAFile = "/ca.pem"
	full.ExpectedAudience = []string{"kafka", "other"}
	full.ExpectedIssuer = "https://idp.example"
	full.SubClaimName = "client_id"
	full.ScopeClaimName = "scp"
	full.ClockSkew = 5 * time.Second
	unsecured := broker.DefaultOAuthBearerConfig()
	unsecured.UnsecuredPrincipalClaimName = "user"
	unsecured.UnsecuredScopeClaimName = "roles"
	unsecured.UnsecuredRequiredScope = []string{"kafka"}
	unsecured.UnsecuredClockSkew = 1500 * time.Millisecond
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		oauth   broker.OAuthBearerConfig
		reauth  time.Duration
		wantErr string
	}{
		{name: "defaults", oauth: broker.DefaultOAuthBearerConfig()},
		{name: "secured", args: []string{"--sasl-enabled-mechanisms", "OAUTHBEARER", "--connections-max-reauth-ms", "2500",
			"--sasl-oauthbearer-jwks-endpoint-url", "https://idp.example/jwks", "--sasl-oauthbearer-jwks-endpoint-refresh-ms", "90000",
			"--sasl-oauthbearer-jwks-endpoint-retry-backoff-ms", "50", "--sasl-oauthbearer-jwks-endpoint-retry-backoff-max-ms", "2000",
			"--sasl-oauthbearer-jwks-ca-file", "/ca.pem", "--sasl-oauthbearer-expected-audience", "kafka,other",
			"--sasl-oauthbearer-expected-issuer", "https://idp.example", "--sasl-oauthbearer-sub-claim-name", "client_id",
			"--sasl-oauthbearer-scope-claim-name", "scp", "--sasl-oauthbearer-clock-skew-seconds", "5"},
			oauth: full, reauth: 2500 * time.Millisecond},
		{name: "unsecured", args: []string{"--sasl-enabled-mechanisms", "OAUTHBEARER,PLAIN",
			"--sasl-oauthbearer-unsecured-principal-claim-name", "user", "--sasl-oauthbearer-unsecured-scope-claim-name", "roles",
			"--sasl-oauthbearer-unsecured-required-scope", "kafka", "--sasl-oauthbearer-unsecured-clock-skew-ms", "1500"},
			oauth: unsecured},
		{name: "reauth from env", env: map[string]string{"STROM_CONNECTIONS_MAX_REAUTH_MS": "60000"},
			oauth: broker.DefaultOAuthBearerConfig(), reauth: time.Minute},
		{name: "fractional ms", args: []string{"--connections-max-reauth-ms", "1.5"}, wantErr: "not a whole number"},
		{name: "negative ms", args: []string{"--connections-max-reauth-ms", "-1"}, wantErr: "out of range"},
		{name: "http jwks", args: []string{"--sasl-enabled-mechanisms", "OAUTHBEARER", "--sasl-oauthbearer-jwks-endpoint-url", "http://idp/jwks"},
			wantErr: "want file:///path or https://host/path"},
		{name: "empty claim name", args: []string{"--sasl-enabled-mechanisms", "OAUTHBEARER", "--sasl-oauthbearer-sub-claim-name", ""},
			wantErr: "claim names must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if parseErr != nil {
				err = parseErr
			}
			if err == nil && tc.wantErr != "" {
				err = cfg.Validate()
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.OAuthBearer, tc.oauth) || cfg.ConnectionsMaxReauth != tc.reauth {
				t.Fatalf("oauth %+v reauth %v; want %+v %v", cfg.OAuthBearer, cfg.ConnectionsMaxReauth, tc.oauth, tc.reauth)
			}
		})
	}
}
