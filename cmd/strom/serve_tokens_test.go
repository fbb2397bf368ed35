package main

import (
	"testing"
	"time"

	"github.com/stromhq/strom/broker"
)

// TestServeDelegationTokenFlags maps the delegation token flags (Kafka's
// delegation.token.* keys, in Kafka's units) onto broker.Config.
func TestServeDelegationTokenFlags(t *testing.T) {
	set := broker.DefaultDelegationTokenConfig()
	set.SecretKey = "k"
	set.MaxLifetime = time.Hour
	set.ExpiryTime = time.Minute
	set.ExpiryCheckInterval = 5 * time.Second
	fromEnv := broker.DefaultDelegationTokenConfig()
	fromEnv.SecretKey = "from-env"
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    broker.DelegationTokenConfig
		wantErr string
	}{
		{name: "defaults", want: broker.DefaultDelegationTokenConfig()},
		{name: "set", args: []string{"--delegation-token-secret-key", "k", "--delegation-token-max-lifetime-ms", "3600000",
			"--delegation-token-expiry-time-ms", "60000", "--delegation-token-expiry-check-interval-ms", "5000"}, want: set},
		{name: "secret from env", env: map[string]string{"STROM_DELEGATION_TOKEN_SECRET_KEY": "from-env"}, want: fromEnv},
		{name: "zero expiry", args: []string{"--delegation-token-expiry-time-ms", "0"}, wantErr: "at least 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if parseErr != nil {
				err = parseErr
			}
			if err == nil {
				err = cfg.Validate()
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if cfg.DelegationTokens != tc.want {
				t.Fatalf("delegation tokens %+v, want %+v", cfg.DelegationTokens, tc.want)
			}
		})
	}
}
