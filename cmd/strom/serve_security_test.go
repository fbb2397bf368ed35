package main

import (
	"reflect"
	"testing"

	"github.com/stromhq/strom/broker"
)

// TestServeSecurityFlags maps the listener, SASL, TLS and --add-scram
// flags onto broker.Config.
func TestServeSecurityFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		listeners []broker.Listener
		mechs     []string
		users     []string // SCRAMUser.String() of each
		wantErr   string
	}{
		{name: "defaults", mechs: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{name: "sasl listener", args: []string{"--listeners", "SASL_PLAINTEXT://127.0.0.1:9092", "--sasl-enabled-mechanisms", "SCRAM-SHA-512",
			"--inter-broker-sasl-mechanism", "PLAIN", "--inter-broker-sasl-username", "u", "--inter-broker-sasl-password", "p"},
			listeners: []broker.Listener{{Name: "SASL_PLAINTEXT", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:9092"}},
			mechs:     []string{"SCRAM-SHA-512"}},
		{name: "mapped name and advertised", args: []string{"--listeners", "INTERNAL://127.0.0.1:9093,CLIENT://127.0.0.1:9092",
			"--listener-security-protocol-map", "CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT", "--advertised-listeners", "CLIENT://kafka.local:9092"},
			listeners: []broker.Listener{{Name: "INTERNAL", Protocol: broker.ProtocolPlaintext, Addr: "127.0.0.1:9093"},
				{Name: "CLIENT", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:9092", Advertise: "kafka.local:9092"}},
			mechs: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{name: "advertised for --listen", args: []string{"--listen", "127.0.0.1:7000", "--advertised-listeners", "PLAINTEXT://h:7000"},
			listeners: []broker.Listener{{Name: "PLAINTEXT", Protocol: broker.ProtocolPlaintext, Addr: "127.0.0.1:7000", Advertise: "h:7000"}},
			mechs:     []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{name: "add-scram twice", args: []string{"--add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret]",
			"--add-scram", "SCRAM-SHA-512=[name=ops,password=x,iterations=8192]"},
			mechs: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
			users: []string{"SCRAM-SHA-256=[name=admin,iterations=4096,...]", "SCRAM-SHA-512=[name=ops,iterations=8192,...]"}},
		{name: "add-scram from env", env: map[string]string{"STROM_ADD_SCRAM": "SCRAM-SHA-256=[name=env,password=p]"},
			mechs: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, users: []string{"SCRAM-SHA-256=[name=env,iterations=4096,...]"}},
		{name: "inter-broker sasl", args: []string{"--listeners", "INTERNAL://127.0.0.1:9092,CLIENT://127.0.0.1:9094",
			"--listener-security-protocol-map", "INTERNAL:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT", "--inter-broker-listener-name", "INTERNAL",
			"--inter-broker-sasl-mechanism", "SCRAM-SHA-512", "--inter-broker-sasl-username", "broker", "--inter-broker-sasl-password", "pw"},
			listeners: []broker.Listener{{Name: "INTERNAL", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:9092"},
				{Name: "CLIENT", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:9094"}},
			mechs: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{name: "inter-broker sasl without credentials", args: []string{"--listeners", "SASL_PLAINTEXT://127.0.0.1:9092",
			"--controller-quorum-voters", "1@127.0.0.1:9093,2@127.0.0.1:19093"}, wantErr: "set the inter-broker SASL mechanism"},
		{name: "single node sasl without inter-broker credentials", args: []string{"--listeners", "SASL_PLAINTEXT://127.0.0.1:9092"},
			listeners: []broker.Listener{{Name: "SASL_PLAINTEXT", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:9092"}},
			mechs:     []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{name: "unknown inter-broker listener", args: []string{"--listeners", "PLAINTEXT://127.0.0.1:9092", "--inter-broker-listener-name", "X"},
			wantErr: "inter-broker listener X is not among the listeners"},
		{name: "listen and listeners", args: []string{"--listen", "127.0.0.1:1", "--listeners", "PLAINTEXT://127.0.0.1:2"}, wantErr: "cannot be combined"},
		{name: "bad listener", args: []string{"--listeners", "FOO://127.0.0.1:2"}, wantErr: "no security protocol for listener FOO"},
		{name: "bad mechanism", args: []string{"--sasl-enabled-mechanisms", "GSSAPI"}, wantErr: "SASL mechanism \"GSSAPI\" not supported"},
		{name: "ssl without cert", args: []string{"--listeners", "SSL://127.0.0.1:9093"}, wantErr: "needs a certificate"},
		{name: "bad client auth", args: []string{"--listeners", "SSL://127.0.0.1:9093", "--ssl-cert-file", "c", "--ssl-key-file", "k", "--ssl-client-auth", "maybe"},
			wantErr: "load TLS certificate"},
		{name: "bad add-scram", args: []string{"--add-scram", "SCRAM-SHA-256=[name=a,password=b,iterations=10]"}, wantErr: "iterations 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, parseErr, err := loadServeConfig(t, tc.args, tc.env)
			if parseErr != nil {
				err = parseErr
			}
			if failedAsWanted(t, err, tc.wantErr) {
				return
			}
			if !reflect.DeepEqual(cfg.Listeners, tc.listeners) || !reflect.DeepEqual(cfg.SASLMechanisms, tc.mechs) {
				t.Fatalf("listeners %+v mechanisms %v; want %+v %v", cfg.Listeners, cfg.SASLMechanisms, tc.listeners, tc.mechs)
			}
			var users []string
			for _, u := range cfg.SCRAMUsers {
				users = append(users, u.String())
			}
			if !reflect.DeepEqual(users, tc.users) {
				t.Fatalf("users %v, want %v", users, tc.users)
			}
		})
	}
}
