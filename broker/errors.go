package broker

import (
	"errors"
	"fmt"
)

// Sentinel errors of package broker. Kafka protocol errors are not in this
// block: they are kerr values carried in responses.
var (
	// ErrFrameTooLarge means a client announced a request larger than
	// Config.MaxRequestBytes; the connection is closed without reading it.
	ErrFrameTooLarge = errors.New("broker: request frame too large")
	// ErrMalformedRequest means a request frame, header or body could not be
	// decoded; the connection is closed.
	ErrMalformedRequest = errors.New("broker: malformed request")
	// ErrUnsupportedAPI means a request named an API key or version this
	// broker does not serve; as in Kafka, the connection is closed (except
	// for ApiVersions, which is answered with UNSUPPORTED_VERSION).
	ErrUnsupportedAPI = errors.New("broker: unsupported api key or version")
	// ErrAuthentication means a SASL exchange failed (wrong password,
	// unknown user, malformed message); the client is answered
	// SASL_AUTHENTICATION_FAILED and the connection closed.
	ErrAuthentication = errors.New("broker: authentication failed")
	// errSCRAMFormat means a SCRAM message did not follow RFC 5802.
	errSCRAMFormat = fmt.Errorf("%w: malformed SCRAM message", ErrAuthentication)
	// ErrNotAuthenticated means a connection to a SASL listener sent a
	// request its SASL exchange does not allow (anything but ApiVersions,
	// SaslHandshake and SaslAuthenticate before it authenticated); the
	// connection is closed, as in Kafka.
	ErrNotAuthenticated = errors.New("broker: request before authentication")
	// ErrSessionExpired means a connection's SASL session lifetime
	// (KIP-368) passed and it sent a request other than the SaslHandshake
	// that re-authenticates; the connection is closed, as in Kafka.
	ErrSessionExpired = errors.New("broker: SASL session expired")
	// ErrInvalidListener reports a listener list, security protocol map or
	// advertised listener list that cannot be parsed or is inconsistent.
	ErrInvalidListener = errors.New("broker: invalid listener")
	// ErrInvalidSCRAMUser reports an --add-scram credential that cannot be
	// parsed or is out of Kafka's bounds.
	ErrInvalidSCRAMUser = errors.New("broker: invalid SCRAM credential")
	// ErrInvalidConfig reports an invalid broker Config.
	ErrInvalidConfig = errors.New("broker: invalid config")
	// ErrReplicationFactorChange: an AlterPartitionReassignments v1 entry
	// would change a partition's replica count without
	// AllowReplicationFactorChange (answered INVALID_REPLICATION_FACTOR).
	ErrReplicationFactorChange = errors.New("broker: replication factor change not allowed")
	// ErrResponseLayout means an encoded Fetch response did not hold its
	// records where the writer expected them (a bug of ours); the response
	// is not sent and the connection is closed.
	ErrResponseLayout = errors.New("broker: fetch response layout mismatch")
	// errTxnEnded means a transaction ended (its marker was appended)
	// while a write verified against it waited for its partition lock; the
	// write is refused with INVALID_TXN_STATE.
	errTxnEnded = errors.New("broker: transaction ended during verification")
	// errNotLeading means an append found, under the partition lock, that
	// this replica no longer leads the partition in the epoch it would stamp
	// (leadership moved after the request looked it up); nothing was
	// appended (NOT_LEADER_OR_FOLLOWER).
	errNotLeading = errors.New("broker: not the partition's leader")
	// errStaleMarker means a transaction marker carried an older producer
	// epoch than the partition already holds for its producer; it is not
	// appended (INVALID_PRODUCER_EPOCH).
	errStaleMarker = errors.New("broker: transaction marker of a stale producer epoch")
	// errFencedMarker means a transaction marker came from an older
	// transaction coordinator epoch than a marker already appended for its
	// producer; it is not appended (TRANSACTION_COORDINATOR_FENCED).
	errFencedMarker = errors.New("broker: transaction marker from a fenced coordinator")
)
