package broker

// ApiVersions, versions 0-4.
//
// The answer is generated from the handlers registered in init functions, so
// it lists exactly what this broker serves. Differences from Kafka:
//   - SupportedFeatures / FinalizedFeatures (v3+) list transaction.version
//     only (2, so clients may use KIP-890 part 2); Kafka also lists
//     metadata.version and friends, which clients use only for KRaft
//     controller features.
//   - v5 (KIP-1242 cluster id / node id check) is not served.
//
// A request for an unknown ApiVersions version is answered, as Kafka does,
// with a v0 response carrying UNSUPPORTED_VERSION and our ApiVersions range
// (conn.handleFrame). v3+ requests carry the client's software name and
// version (KIP-511); invalid ones are answered with INVALID_REQUEST.

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func init() { register(&kmsg.ApiVersionsRequest{}, 0, 4, (*Broker).handleApiVersions) }

// softwareRE is Kafka's pattern for client software names and versions.
var softwareRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (b *Broker) handleApiVersions(rq *request, req *kmsg.ApiVersionsRequest) reply {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 {
		if !softwareRE.MatchString(req.ClientSoftwareName) || !softwareRE.MatchString(req.ClientSoftwareVersion) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return now(resp)
		}
		rq.c.clientSoftware = req.ClientSoftwareName + "/" + req.ClientSoftwareVersion
	}
	if rq.c.sasl.state == saslStart {
		// Kafka allows one ApiVersions before the handshake.
		rq.c.sasl.state = saslHandshake
	}
	for _, s := range servedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = s.key, s.min, s.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	if req.Version >= 3 {
		// transaction.version 2 tells clients they may use KIP-890 part
		// 2 (transactions.go); the level never changes, so epoch 0.
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, 2
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", 2, 2
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		resp.FinalizedFeaturesEpoch = 0
	}
	return now(resp)
}

// unsupportedApiVersions is the v0 answer to an ApiVersions request whose
// version we do not serve: UNSUPPORTED_VERSION plus our ApiVersions range.
func unsupportedApiVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	s := apis[apiVersionsKey]
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = s.key, s.min, s.max
	resp.ApiKeys = append(resp.ApiKeys, k)
	return resp
}
