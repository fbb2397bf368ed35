package broker

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseListeners(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		listeners, protoMap, advert string
		want                        []Listener
		err                         bool
	}{
		{name: "one", listeners: "SASL_PLAINTEXT://127.0.0.1:9092",
			want: []Listener{{Name: "SASL_PLAINTEXT", Protocol: ProtocolSASLPlaintext, Addr: "127.0.0.1:9092"}}},
		{name: "lower case name", listeners: "ssl://127.0.0.1:9093",
			want: []Listener{{Name: "SSL", Protocol: ProtocolSSL, Addr: "127.0.0.1:9093"}}},
		{name: "all interfaces", listeners: "PLAINTEXT://:9092",
			want: []Listener{{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Addr: ":9092"}}},
		{name: "ipv6", listeners: "PLAINTEXT://[::1]:9092",
			want: []Listener{{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Addr: "[::1]:9092"}}},
		{name: "mapped and advertised", listeners: "INTERNAL://127.0.0.1:9092, EXTERNAL://127.0.0.1:9094",
			protoMap: "INTERNAL:PLAINTEXT,external:sasl_ssl", advert: "EXTERNAL://kafka.example:9094",
			want: []Listener{{Name: "INTERNAL", Protocol: ProtocolPlaintext, Addr: "127.0.0.1:9092"},
				{Name: "EXTERNAL", Protocol: ProtocolSASLSSL, Addr: "127.0.0.1:9094", Advertise: "kafka.example:9094"}}},
		{name: "port 0 twice", listeners: "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
			want: []Listener{{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Addr: "127.0.0.1:0"}, {Name: "SSL", Protocol: ProtocolSSL, Addr: "127.0.0.1:0"}}},
		{name: "unmapped name", listeners: "INTERNAL://127.0.0.1:9092", err: true},
		{name: "no scheme", listeners: "127.0.0.1:9092", err: true},
		{name: "no port", listeners: "PLAINTEXT://127.0.0.1", err: true},
		{name: "bad port", listeners: "PLAINTEXT://127.0.0.1:99999", err: true},
		{name: "negative port", listeners: "PLAINTEXT://127.0.0.1:-1", err: true},
		{name: "duplicate name", listeners: "PLAINTEXT://127.0.0.1:1,plaintext://127.0.0.1:2", err: true},
		{name: "duplicate port", listeners: "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9092", err: true},
		{name: "empty", listeners: "", err: true},
		{name: "bad name", listeners: "A B://127.0.0.1:1", err: true},
		{name: "bad protocol", listeners: "X://127.0.0.1:1", protoMap: "X:TLS", err: true},
		{name: "map without colon", listeners: "X://127.0.0.1:1", protoMap: "X", err: true},
		{name: "advertised unknown", listeners: "PLAINTEXT://127.0.0.1:1", advert: "SSL://h:1", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseListeners(tc.listeners, tc.protoMap, tc.advert)
			if tc.err {
				if !errors.Is(err, ErrInvalidListener) {
					t.Fatalf("err %v, want ErrInvalidListener (got %+v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseSCRAMUser(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     SCRAMUser
		err      bool
	}{
		{name: "password", in: "SCRAM-SHA-256=[name=admin,password=admin-secret]",
			want: SCRAMUser{Mechanism: "SCRAM-SHA-256", Name: "admin", Password: "admin-secret"}},
		{name: "quoted and iterations", in: `SCRAM-SHA-512=[name="alice",password="a=b",iterations=8192]`,
			want: SCRAMUser{Mechanism: "SCRAM-SHA-512", Name: "alice", Password: "a=b", Iterations: 8192}},
		{name: "salted", in: "SCRAM-SHA-256=[name=bob,salt=c2FsdA==,saltedpassword=cHc=,iterations=4096]",
			want: SCRAMUser{Mechanism: "SCRAM-SHA-256", Name: "bob", Salt: []byte("salt"), SaltedPassword: []byte("pw"), Iterations: 4096}},
		{name: "unknown mechanism", in: "SCRAM-SHA-1=[name=a,password=b]", err: true},
		{name: "no brackets", in: "SCRAM-SHA-256=name=a,password=b", err: true},
		{name: "no name", in: "SCRAM-SHA-256=[password=b]", err: true},
		{name: "empty name", in: "SCRAM-SHA-256=[name=,password=b]", err: true},
		{name: "no password", in: "SCRAM-SHA-256=[name=a]", err: true},
		{name: "salted without salt", in: "SCRAM-SHA-256=[name=a,saltedpassword=cHc=]", err: true},
		{name: "both secrets", in: "SCRAM-SHA-256=[name=a,password=b,salt=c2FsdA==,saltedpassword=cHc=]", err: true},
		{name: "few iterations", in: "SCRAM-SHA-256=[name=a,password=b,iterations=100]", err: true},
		{name: "many iterations", in: "SCRAM-SHA-256=[name=a,password=b,iterations=20000]", err: true},
		{name: "bad iterations", in: "SCRAM-SHA-256=[name=a,password=b,iterations=x]", err: true},
		{name: "unknown key", in: "SCRAM-SHA-256=[name=a,password=b,foo=1]", err: true},
		{name: "repeated key", in: "SCRAM-SHA-256=[name=a,name=b,password=b]", err: true},
		{name: "bad salt", in: "SCRAM-SHA-256=[name=a,salt=!!,saltedpassword=cHc=]", err: true},
		{name: "no equals", in: "SCRAM-SHA-256", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSCRAMUser(tc.in)
			if tc.err {
				if !errors.Is(err, ErrInvalidSCRAMUser) {
					t.Fatalf("err %v, want ErrInvalidSCRAMUser", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRFC2253Name(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"alice", "alice"},
		{"a,b", `a\,b`},
		{"a+b=c", `a\+b\=c`},
		{" x ", `\ x\ `},
		{`q"#;<>\`, `q\"\#\;\<\>\\`},
	} {
		if got := escapeRFC2253(tc.in); got != tc.want {
			t.Errorf("escape %q: %q, want %q", tc.in, got, tc.want)
		}
	}
}
