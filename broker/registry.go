package broker

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reply is a handler's answer, handed to the connection's writer goroutine,
// which sends replies strictly in request order.
//
// Handlers run on the connection's read goroutine, one at a time, so all
// ordering-sensitive work (appending to a log, allocating ids) happens in
// request order. Work that only waits (acks=all durability, fetch long polls)
// goes into wait, which the writer runs in order while the reader already
// handles the next request.
type reply struct {
	// resp is the finished response, or nil when wait is set.
	resp kmsg.Response
	// wait, when set, blocks until the response is ready and returns it. ctx
	// is cancelled when the broker shuts down; wait must then return promptly
	// with what it has.
	wait func(ctx context.Context) kmsg.Response
	// none means the request has no response (Produce with acks=0).
	none bool
	// closeConn closes the connection after every earlier response has been
	// written (acks=0 produce errors, as Kafka does).
	closeConn bool
	// token, when not nil, is sent instead of a response: a bare
	// size-prefixed frame without a Kafka header (SASL tokens after a v0
	// SaslHandshake).
	token []byte
}

// handlerFunc serves one decoded request.
type handlerFunc func(b *Broker, rq *request) reply

// apiSpec is one served API key: its version range and handler.
type apiSpec struct {
	key      int16
	min, max int16
	handle   handlerFunc
}

// apis holds every served API key; written only by init functions through
// register, read-only afterwards.
var apis = map[int16]apiSpec{}

// register adds the handler of proto's API key for versions min..max. It is
// called from init functions of the API files, next to the handler, so the
// ApiVersions answer is derived from what is implemented.
func register[R kmsg.Request](proto R, min, max int16, h func(b *Broker, rq *request, req R) reply) {
	key := proto.Key()
	if _, dup := apis[key]; dup {
		panic(fmt.Sprintf("broker: api key %d registered twice", key))
	}
	if min < 0 || max < min || max > proto.MaxVersion() {
		panic(fmt.Sprintf("broker: api key %d: bad version range %d..%d (kmsg max %d)", key, min, max, proto.MaxVersion()))
	}
	apis[key] = apiSpec{key: key, min: min, max: max, handle: func(b *Broker, rq *request) reply {
		return h(b, rq, rq.body.(R))
	}}
}

// lookupAPI returns the spec of key if version is served.
func lookupAPI(key, version int16) (apiSpec, bool) {
	s, ok := apis[key]
	if !ok || version < s.min || version > s.max {
		return apiSpec{}, false
	}
	return s, true
}

// servedAPIs returns every served API sorted by key.
func servedAPIs() []apiSpec {
	out := make([]apiSpec, 0, len(apis))
	for _, s := range apis {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// request is one decoded request with its header.
type request struct {
	c        *conn
	key      int16
	version  int16
	corr     int32
	clientID string
	body     kmsg.Request
	// size is the request frame's length in bytes (what producer_byte_rate
	// counts).
	size int
}

// now wraps a finished response.
func now(r kmsg.Response) reply { return reply{resp: r} }
